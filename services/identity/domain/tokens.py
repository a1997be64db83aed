"""Token rules: access-token claims and the shape of refresh tokens.

A refresh token is `<organization id hex>.<secret>`: opaque to clients, stored only as the
SHA-256 of the secret, and naming its tenant so the lookup runs under row-level security.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid


def access_claims(*, issuer: str, audience: str, user_id: uuid.UUID, org_id: uuid.UUID, role: str,
                  permissions: tuple[str, ...],
                  family_id: uuid.UUID, now: float, ttl: int, auth_time: float | None = None) -> dict:
    # iat keeps sub-second precision (a membership change's not_before is compared with it);
    # nbf and exp are whole seconds. auth_time (OIDC): when the user last signed in with their
    # password or second factor, whole seconds; a refresh keeps it.
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": str(user_id),
        "org": str(org_id),
        "role": role,
        "perms": list(permissions),
        "sid": str(family_id),
        "jti": uuid.uuid4().hex,
        "iat": now,
        "nbf": int(now),
        "exp": int(now) + ttl,
        "kind": "user",
    }
    if auth_time is not None:
        claims["auth_time"] = int(auth_time)
    return claims


def new_refresh_token(org_id: uuid.UUID) -> tuple[str, bytes]:
    secret = secrets.token_urlsafe(32)
    return f"{org_id.hex}.{secret}", hash_secret(secret)


def parse_refresh_token(token: str) -> tuple[uuid.UUID, bytes] | None:
    org_hex, sep, secret = token.partition(".")
    if not sep or not secret:
        return None
    try:
        return uuid.UUID(hex=org_hex), hash_secret(secret)
    except ValueError:
        return None


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()
