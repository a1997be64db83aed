"""Signed links for people without an account (a client downloading a document, a contact
signing one): `<payload>.<signature>`, both base64url, the signature HMAC-SHA256 of the payload
under the service's link key. The payload names what the link opens and until when; nothing
about a link is stored, so it ends by its expiry (or when the access it relies on is gone).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

DOWNLOAD = "download"
SIGN = "sign"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(key: bytes, purpose: str, claims: dict[str, Any], expires_at: int) -> str:
    payload = _b64(json.dumps({"p": purpose, "x": expires_at, **claims}, separators=(",", ":")).encode())
    mac = hmac.new(key, payload.encode(), hashlib.sha256).digest()
    return f"{payload}.{_b64(mac)}"


def verify(key: bytes, purpose: str, token: str, now: float | None = None) -> dict[str, Any] | None:
    """The claims of a valid, unexpired link for `purpose`; None for anything else (a forged,
    altered, expired or other-purpose link: the caller answers them all alike)."""
    try:
        payload, mac = token.split(".", 1)
        expected = _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())
        # compared as text: base64's spare bits would let another spelling of the same MAC pass
        if not hmac.compare_digest(expected.encode(), mac.encode()):
            return None
        claims = json.loads(_unb64(payload))
    except (ValueError, TypeError):
        return None
    if claims.get("p") != purpose or not isinstance(claims.get("x"), int):
        return None
    if claims["x"] <= (time.time() if now is None else now):
        return None
    return claims
