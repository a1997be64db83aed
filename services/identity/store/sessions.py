"""identity's SQL for sessions: a session is a refresh-token family; its live token (unused,
unrevoked) carries when the session began, when it was last refreshed (its created_at) and
when it expires."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text

from chassis.db import Connection


@dataclass(frozen=True, slots=True)
class Session:
    """A live session (refresh-token family) and whether it is the caller's own."""

    family_id: uuid.UUID
    session_created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    user_agent: str | None
    ip_address: str | None
    current: bool = False


async def live_sessions(conn: Connection, org: uuid.UUID, user_id: uuid.UUID) -> list[Session]:
    rows = (await conn.execute(
        text("SELECT family_id, session_created_at, created_at AS last_used_at, expires_at, user_agent, ip_address "
             "FROM identity.refresh_tokens "
             "WHERE organization_id = :org AND user_id = :u AND used_at IS NULL AND revoked_at IS NULL "
             "AND expires_at > now() ORDER BY created_at DESC, family_id"),
        {"org": org, "u": user_id},
    )).mappings().all()
    return [Session(**dict(r)) for r in rows]


async def family_of_user_exists(conn: Connection, org: uuid.UUID, user_id: uuid.UUID,
                                family_id: uuid.UUID) -> bool:
    return bool((await conn.execute(
        text("SELECT 1 FROM identity.refresh_tokens WHERE organization_id = :org AND family_id = :f "
             "AND user_id = :u LIMIT 1"),
        {"org": org, "f": family_id, "u": user_id},
    )).scalar())


async def revoke_family(conn: Connection, org: uuid.UUID, user_id: uuid.UUID, family_id: uuid.UUID) -> int:
    result = await conn.execute(
        text("UPDATE identity.refresh_tokens SET revoked_at = now(), updated_at = now() "
             "WHERE organization_id = :org AND family_id = :f AND user_id = :u AND revoked_at IS NULL"),
        {"org": org, "f": family_id, "u": user_id},
    )
    return result.rowcount


async def stamp_refreshed(conn: Connection, org: uuid.UUID, family_id: uuid.UUID, spent_token_id: uuid.UUID,
                          user_agent: str, ip_address: str) -> None:
    """After a refresh: the family's new live token keeps the session's start (from the token
    it replaced) and records the client it was refreshed from."""
    await conn.execute(
        text("UPDATE identity.refresh_tokens t SET "
             "session_created_at = (SELECT s.session_created_at FROM identity.refresh_tokens s WHERE s.id = :spent), "
             "user_agent = :ua, ip_address = :ip, updated_at = now() "
             "WHERE t.organization_id = :org AND t.family_id = :f AND t.used_at IS NULL AND t.revoked_at IS NULL"),
        {"org": org, "f": family_id, "spent": spent_token_id, "ua": user_agent[:500] or None,
         "ip": ip_address[:100] or None},
    )


async def standing(conn: Connection, org: uuid.UUID, user_id: uuid.UUID,
                   family_id: uuid.UUID) -> tuple[bool, float | None]:
    """Whether the session is live (its refresh token unused, unrevoked, unexpired) and when the
    user's password last changed (epoch seconds; None if there is no such user)."""
    row = (await conn.execute(
        text("SELECT EXISTS (SELECT 1 FROM identity.refresh_tokens WHERE organization_id = :org AND user_id = :u "
             "AND family_id = :f AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now()) AS live, "
             "(SELECT extract(epoch FROM password_changed_at)::float8 FROM identity.users "
             "WHERE id = :u AND deleted_at IS NULL) AS password_changed"),
        {"org": org, "u": user_id, "f": family_id},
    )).first()
    return bool(row["live"]), row["password_changed"]
