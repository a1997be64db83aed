"""The plan's seat limit, from identity's own replica of billing's entitlements: enforced when an
invitation is created (billing down never blocks: the replica is local; none means no limit)."""

from __future__ import annotations

import uuid
from datetime import datetime

from chassis.db import UnitOfWork
from services.identity.domain import seats as rules
from services.identity.store import seats as store


async def record(uow: UnitOfWork, org: uuid.UUID, plan_code: str, seats: int, decided_at: datetime) -> None:
    await store.record(uow.conn, org, plan_code, seats, decided_at)


async def check_seat_for_invitation(uow: UnitOfWork, org: uuid.UUID) -> None:
    """The caller holds the organization's lock, so concurrent invitations count one after another."""
    found = await store.limit(uow.conn, org)
    if found is None or found[0] == rules.UNLIMITED:
        return
    rules.check_seat(found[0], await store.taken(uow.conn, org), found[1])
