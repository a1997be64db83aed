"""MFA rules: TOTP codes and their time steps, backup codes, login challenges, trusted devices.

TOTP (RFC 6238: SHA-1, six digits, 30-second steps) accepts one step of clock drift either
way and never the same step twice: the caller keeps the last accepted step and a code is
good only for a later one. Backup codes are ten characters of base32 (shown as two groups
of five), stored only as salted SHA-256. Challenge and device tokens are random and stored
only as SHA-256; a challenge token is `<organization id hex>.<secret>` like a refresh token,
so its lookup runs under the tenant's row-level security.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass

import pyotp

from chassis.errors import Violations

ISSUER = "Givance"
STEP_SECONDS = 30
VALID_WINDOW = 1  # steps of drift accepted either way
BACKUP_CODE_COUNT = 10
BACKUP_CODE_LENGTH = 10
CHALLENGE_TTL_SECONDS = 5 * 60
CHALLENGE_MAX_ATTEMPTS = 5
DEVICE_TTL_SECONDS = 30 * 24 * 3600
DEVICE_NAME_MAX = 100
TOKEN_MAX = 512
# Consecutive wrong codes for one user (any challenge, any MfaService call) before code checks
# are refused for LOCK_SECONDS: a challenge allows five attempts, but new ones are one login away.
MAX_CONSECUTIVE_FAILURES = 10
LOCK_SECONDS = 15 * 60
# What a token may do while its organization requires MFA and the user has not enrolled yet.
ENROLL_ONLY_PERMISSIONS = ("identity.self",)

TOTP = "totp"
BACKUP = "backup"

_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_TOTP_RE = re.compile(r"^[0-9]{6}$")
_BACKUP_RE = re.compile(rf"^[{_BASE32}]{{{BACKUP_CODE_LENGTH}}}$")


@dataclass(frozen=True)
class Code:
    kind: str  # TOTP or BACKUP
    value: str  # normalized: six digits, or ten base32 characters without separators


def parse_code(code: str, field: str, violations: Violations, *, totp_only: bool = False) -> Code | None:
    """A six-digit TOTP code or (unless totp_only) a backup code; spaces and hyphens are ignored."""
    if not code:
        violations.add(field, "is required")
        return None
    value = re.sub(r"[\s-]", "", code).upper()
    if _TOTP_RE.match(value):
        return Code(TOTP, value)
    if not totp_only and _BACKUP_RE.match(value):
        return Code(BACKUP, value)
    violations.add(field, "must be a 6-digit code" if totp_only else "must be a 6-digit code or a backup code")
    return None


# -- TOTP ---------------------------------------------------------------------------------------


def new_totp_secret() -> str:
    """160 random bits in base32 (RFC 4226 recommends at least 128)."""
    return pyotp.random_base32(32)


def otpauth_uri(secret: str, account: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=ISSUER)


def current_step(now: float) -> int:
    return int(now) // STEP_SECONDS


def accepted_step(secret: str, code: str, now: float, last_step: int) -> int | None:
    """The time step `code` belongs to, within one step of `now`, if later than `last_step`.

    A code already accepted (or one older than the last accepted) is refused: a code seen
    over someone's shoulder or replayed from a log never works.
    """
    totp = pyotp.TOTP(secret)
    now_step = current_step(now)
    matched = None
    for step in range(now_step - VALID_WINDOW, now_step + VALID_WINDOW + 1):
        # Every candidate is compared (no early exit) so the answer takes alike in time.
        if hmac.compare_digest(totp.generate_otp(step), code) and step > last_step:
            matched = step
    return matched


# -- backup codes -------------------------------------------------------------------------------


def new_backup_codes() -> list[str]:
    """Ten codes as the user sees them: `ABCDE-FGHJK`."""
    codes = []
    for _ in range(BACKUP_CODE_COUNT):
        raw = "".join(secrets.choice(_BASE32) for _ in range(BACKUP_CODE_LENGTH))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def hash_backup_code(code: str) -> str:
    """`<salt hex>:<sha256(salt | code) hex>` of the normalized code; a fresh salt per code."""
    value = re.sub(r"[\s-]", "", code).upper()
    salt = secrets.token_bytes(16)
    return f"{salt.hex()}:{_salted(salt, value)}"


def matching_backup_code(value: str, stored: list[str]) -> str | None:
    """The stored entry (as stored) that `value` (normalized) matches, if any."""
    found = None
    for entry in stored:
        salt_hex, sep, digest = entry.partition(":")
        if not sep:
            continue
        try:
            salt = bytes.fromhex(salt_hex)
        except ValueError:
            continue
        if hmac.compare_digest(_salted(salt, value), digest):
            found = entry
    return found


def _salted(salt: bytes, value: str) -> str:
    return hashlib.sha256(salt + value.encode()).hexdigest()


# -- challenge and device tokens ----------------------------------------------------------------


def new_challenge_token(org_id: uuid.UUID) -> tuple[str, bytes]:
    secret = secrets.token_urlsafe(32)
    return f"{org_id.hex}.{secret}", hash_token(secret)


def parse_challenge_token(token: str) -> tuple[uuid.UUID, bytes] | None:
    org_hex, sep, secret = token.partition(".")
    if not sep or not secret or len(token) > TOKEN_MAX:
        return None
    try:
        return uuid.UUID(hex=org_hex), hash_token(secret)
    except ValueError:
        return None


def new_device_token() -> tuple[str, bytes]:
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def check_device_name(name: str, field: str, violations: Violations) -> str:
    name = name.strip()
    if len(name) > DEVICE_NAME_MAX:
        violations.add(field, f"must be at most {DEVICE_NAME_MAX} characters")
    elif any(ord(c) < 32 for c in name):
        violations.add(field, "must not contain control characters")
    return name
