"""Service-account rules: names, permission strings, client credentials, token claims.

A client id is `<organization id hex>.<random>`, so IssueServiceToken knows the tenant
before it looks the account up (under row-level security). The client secret is 256 random
bits, shown once and stored as its SHA-256 (a slow hash buys nothing for a random secret).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid

from chassis.errors import Violations
from services.identity.domain import organizations, roles

NAME_MAX = 100
SERVICE_KIND = "service"


def clean_name(name: str, field: str, v: Violations) -> str:
    return organizations.check_name(name, field, v, NAME_MAX)


def clean_permissions(permissions: list[str], field: str, v: Violations) -> list[str]:
    """Catalogued permissions or wildcards over them (as for roles), at least one, deduplicated."""
    if not permissions:
        v.add(field, "at least one permission is required")
        return []
    return roles.clean_permissions(permissions, field, v)


def beyond(granted: tuple[str, ...] | list[str], wanted: list[str]) -> list[str]:
    """The wanted permissions the granted ones do not cover (a credential never exceeds its creator)."""
    return [p for p in wanted if not roles.holds(granted, p)]


def capped(wanted: list[str], granted: tuple[str, ...] | list[str]) -> list[str]:
    """What of `wanted` the creator's current `granted` covers: a permission they hold, or of a
    wildcard they hold only in part, the catalogued permissions under it that they hold."""
    out: list[str] = []
    for p in wanted:
        held = [p] if roles.holds(granted, p) else [c for c in roles.CATALOGUE
                                                     if roles.covers(p, c) and roles.holds(granted, c)]
        out += [h for h in held if h not in out]
    return out


def new_credentials(org_id: uuid.UUID) -> tuple[str, str, bytes]:
    """(client id, client secret, the secret's hash)."""
    client_id = f"{org_id.hex}.{secrets.token_urlsafe(12)}"
    secret = secrets.token_urlsafe(32)
    return client_id, secret, hash_secret(secret)


def tenant_of_client_id(client_id: str) -> uuid.UUID | None:
    org_hex, sep, rest = client_id.partition(".")
    if not sep or not rest or len(org_hex) != 32:
        return None
    try:
        return uuid.UUID(hex=org_hex)
    except ValueError:
        return None


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def secret_matches(secret: str, stored_hash: bytes) -> bool:
    return hmac.compare_digest(hash_secret(secret), bytes(stored_hash))


def service_claims(*, issuer: str, audience: str, account_id: uuid.UUID, org_id: uuid.UUID,
                   permissions: list[str], now: float, ttl: int) -> dict:
    # iat keeps sub-second precision, like user tokens (revocations compare not_before with it).
    return {
        "iss": issuer,
        "aud": audience,
        "sub": str(account_id),
        "org": str(org_id),
        "role": SERVICE_KIND,
        "perms": list(permissions),
        "jti": uuid.uuid4().hex,
        "iat": now,
        "nbf": int(now),
        "exp": int(now) + ttl,
        "kind": SERVICE_KIND,
    }
