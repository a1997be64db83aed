"""crm's replica of the organization's members (crm.members), written from identity's events."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import text

from chassis.db import Connection


async def record(conn: Connection, org: uuid.UUID, user_id: uuid.UUID, *, active: bool,
                 event_time: datetime) -> bool:
    """Set whether the user is an active member, as of event_time; an event no newer than the
    one that last set the row changes nothing. True when the row was written."""
    result = await conn.execute(
        text("INSERT INTO crm.members AS m (organization_id, user_id, active, last_event_time) "
             "VALUES (:org, :user, :active, :at) "
             "ON CONFLICT (organization_id, user_id) DO UPDATE "
             "SET active = EXCLUDED.active, last_event_time = EXCLUDED.last_event_time, updated_at = now() "
             "WHERE m.last_event_time < EXCLUDED.last_event_time"),
        {"org": org, "user": user_id, "active": active, "at": event_time},
    )
    return result.rowcount == 1


async def is_active(conn: Connection, org: uuid.UUID, user_id: uuid.UUID) -> bool:
    """Whether the user is an active member. FOR SHARE: a suspension being recorded waits for
    the assigning transaction, or the assignment waits for it and sees it."""
    return bool((await conn.execute(
        text("SELECT active FROM crm.members WHERE organization_id = :org AND user_id = :user FOR SHARE"),
        {"org": org, "user": user_id},
    )).scalar())
