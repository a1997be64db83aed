"""Platform service principals: a service's own credential, and the tokens it gets for a tenant.

A principal is named after its service (`crm`, `ai`); the name is its client id. Its secret is
256 random bits, shown once and stored as its SHA-256 (service_accounts.py: a slow hash buys
nothing for a random secret). Its grant is a list of tenant permissions (catalogued, no
wildcard and no platform permission): what the service may do for any organization it acts for.

A tenant token (RFC 8693's token exchange, as Zitadel and Keycloak issue it) carries:
- `sub`: the principal's id, `org`: the one organization, `perms`: the grant or the part asked for;
- `aud`: only the services those permissions belong to (`givance.comms` for `comms.*`), so
  every other service, identity included, refuses it (chassis.spec binds each verifier to
  `givance` and `givance.<its name>`);
- `act`: `{"sub": "service:<name>"}`, the actor every audit entry it causes names;
- `sid`: `principal:<id>`, so revoking or rotating the principal revokes every token it holds,
  in every organization, as one session revocation (chassis.revocation);
- `kind`: `platform_service`, `role`: `platform_service`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid

from chassis.errors import Violations
from services.identity.domain import roles

KIND = "platform_service"
ACTOR_PREFIX = "service:"
SESSION_PREFIX = "principal:"
AUDIENCE_PREFIX = "givance."
NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
SECRET_MAX = 200
PERMISSIONS_MAX = 50


def check_name(name: str, field: str, v: Violations) -> str:
    name = name.strip()
    if not NAME.match(name):
        v.add(field, "must be a service's name: lower-case letters, digits, '-' or '_', at most 63, a letter first")
    return name


def clean_permissions(values: list[str], field: str, v: Violations) -> list[str]:
    """Catalogued tenant permissions, at least one; no wildcard, no platform permission."""
    if not values:
        v.add(field, "at least one permission is required")
        return []
    out = roles.clean_permissions(values, field, v)
    for i, p in enumerate(out):
        if "*" in p:
            v.add(f"{field}[{i}]", f"{p!r}: a service principal is granted permissions one by one, not wildcards")
    return out


def audience(permissions: list[str] | tuple[str, ...]) -> list[str]:
    """The services that accept a token carrying these permissions."""
    return sorted({AUDIENCE_PREFIX + p.split(".", 1)[0] for p in permissions})


def narrowed(granted: list[str], asked: list[str], field: str, v: Violations) -> list[str]:
    """What a token carries: `asked` (each one granted), or all of `granted` when nothing is asked."""
    if len(asked) > PERMISSIONS_MAX:
        v.add(field, f"must hold at most {PERMISSIONS_MAX} permissions")
        return []
    out: list[str] = []
    for i, p in enumerate(asked):
        p = p.strip()
        if not p or len(p) > 200:
            v.add(f"{field}[{i}]", "must be a permission (1 to 200 characters)")
        elif p not in out:
            out.append(p)
    return out or list(granted)


def beyond(granted: list[str], wanted: list[str]) -> list[str]:
    return [p for p in wanted if p not in granted]


def new_secret() -> tuple[str, bytes]:
    secret = secrets.token_urlsafe(32)
    return secret, hash_secret(secret)


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def secret_matches(secret: str, stored_hash: bytes) -> bool:
    return hmac.compare_digest(hash_secret(secret), bytes(stored_hash))


def session_id(principal_id: uuid.UUID) -> str:
    return f"{SESSION_PREFIX}{principal_id}"


def tenant_claims(*, issuer: str, principal_id: uuid.UUID, name: str, org_id: uuid.UUID, permissions: list[str],
                  now: float, ttl: int) -> dict:
    return {
        "iss": issuer,
        "aud": audience(permissions),
        "sub": str(principal_id),
        "org": str(org_id),
        "role": KIND,
        "perms": list(permissions),
        "act": {"sub": ACTOR_PREFIX + name},
        "sid": session_id(principal_id),
        "jti": uuid.uuid4().hex,
        "iat": now,
        "nbf": int(now),
        "exp": int(now) + ttl,
        "kind": KIND,
    }
