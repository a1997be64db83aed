"""comms.members, the replica of who is an active member (a generation session's signer must be
one): kept from identity's events by the comms.members consumer."""

from __future__ import annotations

import uuid
from datetime import datetime

from chassis.db import UnitOfWork
from services.comms.store import members as store


async def record_member(uow: UnitOfWork, organization_id: str, user_id: str, *, active: bool,
                        event_time: datetime) -> bool:
    """One membership event of uow's tenant; an event older than the row's changes nothing."""
    if uuid.UUID(organization_id) != uow.tenant_id:
        raise ValueError(f"the event's organization {organization_id} is not its tenant {uow.tenant_id}")
    return await store.record(uow.conn, uow.tenant_id, uuid.UUID(user_id), active=active, event_time=event_time)
