"""Plan limits, enforced where crm does the work, from crm's own replica of billing's
entitlements: billing being down never blocks a tenant (the replica is in crm's database; an
organization billing has not spoken for yet has no limit)."""

from __future__ import annotations

import uuid
from datetime import datetime

from chassis.db import UnitOfWork
from services.crm.domain import entitlements as rules
from services.crm.store import entitlements as store


async def record(uow: UnitOfWork, org: uuid.UUID, plan_code: str, donors: int, seats: int,
                 decided_at: datetime) -> None:
    await store.record(uow.conn, org, plan_code, donors, seats, decided_at)


async def check_room_for_donors(uow: UnitOfWork, org: uuid.UUID, adding: int = 1) -> None:
    limit = await store.donor_limit(uow.conn, org)
    if limit is None or limit[0] == rules.UNLIMITED:
        return
    rules.check_room(limit[0], await store.live_donors(uow.conn, org), adding, "donors", limit[1])
