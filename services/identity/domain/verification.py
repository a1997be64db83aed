"""Secrets sent to a user: email verification and password reset links, phone codes.

Every one is single use, expires, is random (the `secrets` module), and is stored only as
SHA-256. A link token carries 256 bits, so its plain hash is enough. A phone code has only
six digits, so its hash is salted with the row's id and the number it was sent to (no two
rows share a hash, and a code is no good for another row); a code dies after
PHONE_CODE_MAX_ATTEMPTS wrong guesses or PHONE_CODE_TTL, whichever comes first.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from datetime import timedelta
from urllib.parse import quote

EMAIL_VERIFICATION = "email_verification"
PASSWORD_RESET = "password_reset"
PHONE_VERIFICATION = "phone_verification"

TTL = {
    EMAIL_VERIFICATION: timedelta(hours=24),
    PASSWORD_RESET: timedelta(hours=1),
    PHONE_VERIFICATION: timedelta(minutes=10),
}
PHONE_CODE_MAX_ATTEMPTS = 5
PHONE_CODE_DIGITS = 6
TOKEN_MAX_LENGTH = 200

_CODE_RE = re.compile(rf"^[0-9]{{{PHONE_CODE_DIGITS}}}$")
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]+$")

LINK_PATHS = {EMAIL_VERIFICATION: "/verify-email", PASSWORD_RESET: "/reset-password"}


def new_link_token() -> tuple[str, bytes]:
    """A link token and the hash to store."""
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def looks_like_token(token: str) -> bool:
    return 0 < len(token) <= TOKEN_MAX_LENGTH and bool(_TOKEN_RE.match(token))


def link(public_url: str, purpose: str, token: str) -> str:
    return f"{public_url.rstrip('/')}{LINK_PATHS[purpose]}?token={quote(token, safe='')}"


def new_phone_code() -> str:
    return f"{secrets.randbelow(10 ** PHONE_CODE_DIGITS):0{PHONE_CODE_DIGITS}d}"


def hash_phone_code(token_id: uuid.UUID, target: str, code: str) -> bytes:
    return hashlib.sha256(f"{token_id}:{target}:{code}".encode()).digest()


def phone_code_matches(token_id: uuid.UUID, target: str, code: str, stored: bytes) -> bool:
    return hmac.compare_digest(hash_phone_code(token_id, target, code), bytes(stored))


def looks_like_phone_code(code: str) -> bool:
    return bool(_CODE_RE.match(code))
