"""crm's replica of the organization's members (crm.members), written from identity's events
(the mechanism is the chassis': chassis.members)."""

from __future__ import annotations

import uuid
from datetime import datetime

from chassis import members
from chassis.db import Connection


async def record(conn: Connection, org: uuid.UUID, user_id: uuid.UUID, *, active: bool,
                 event_time: datetime) -> bool:
    """Set whether the user is an active member, as of event_time (True when the row was written)."""
    return await members.record(conn, "crm", org, user_id, active=active, event_time=event_time)


async def is_active(conn: Connection, org: uuid.UUID, user_id: uuid.UUID) -> bool:
    """Whether the user is an active member (FOR SHARE: see chassis.members.is_active)."""
    return await members.is_active(conn, "crm", org, user_id)
