"""Journey use cases."""

from __future__ import annotations

from chassis.db import UnitOfWork
from services.crm.domain.journeys import DEFAULT_JOURNEY
from services.crm.store import journeys as store


async def seed_default_journey(uow: UnitOfWork) -> bool:
    """Give a new organization the default donor journey (once)."""
    assert uow.tenant_id is not None
    return await store.insert_if_absent(uow.conn, uow.tenant_id, DEFAULT_JOURNEY)
