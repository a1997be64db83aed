"""What an access token grants a member: their role and their computed permissions.

Read when a token is issued, under a share lock on the membership: a change of the
membership (role, overrides, suspension, removal) takes the row lock, so it waits for a token
being issued, and the change's not_before (taken after the lock) falls after that token's
issue time; a token issued after the change commits reads the new rights. Tokens carry `iat`
with sub-second precision, so "issued before not_before" is exact, not rounded to a second.
"""

from __future__ import annotations

import time
import uuid

from chassis.db import Connection
from services.identity.domain import members as member_rules
from services.identity.domain import roles
from services.identity.store import members as store


async def member_grants(conn: Connection, org_id: uuid.UUID, user_id: uuid.UUID) -> tuple[str, tuple[str, ...]] | None:
    """(role as the API names it, permissions) of an active membership, else None."""
    row = await store.membership_for_tokens(conn, org_id, user_id)
    if row is None or row["status"] != member_rules.ACTIVE:
        return None
    overrides = member_rules.Overrides.from_json(row["permissions_override"])
    if row["role"] == roles.CUSTOM:
        role = str(row["custom_role_id"])
        base = tuple(row["role_permissions"] or ())
    else:
        role = row["role"]
        base = roles.permissions_for(role)
    return role, roles.effective_permissions(base, overrides.grant, overrides.deny)


def issue_time() -> float:
    """An access token's `iat`: microsecond precision (RFC 7519 NumericDate may be fractional)."""
    return round(time.time(), 6)
