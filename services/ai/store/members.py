"""ai's replica of the organization's members (ai.members), written from identity's events
(the mechanism is the chassis': chassis.members)."""

from __future__ import annotations

import uuid
from datetime import datetime

from chassis import members
from chassis.db import Connection


async def record(conn: Connection, org: uuid.UUID, user_id: uuid.UUID, *, active: bool,
                 event_time: datetime) -> bool:
    return await members.record(conn, "ai", org, user_id, active=active, event_time=event_time)


async def is_active(conn: Connection, org: uuid.UUID, user_id: uuid.UUID) -> bool:
    return await members.is_active(conn, "ai", org, user_id)
