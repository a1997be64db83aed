"""The rollup check (crm.check_rollups): every kept total recomputed from the gifts, and any
difference reported. It must always report none; the tests and `python -m
services.crm.check_rollups` run it."""

from __future__ import annotations

import uuid

from chassis.db import Database
from services.crm.store import rollups as store
from services.crm.store.rollups import Difference

MAX_REPORTED = 1000


async def check_rollups(db: Database, org: uuid.UUID, limit: int = MAX_REPORTED) -> list[Difference]:
    """The organization's differences between kept and recomputed totals, at most `limit`."""
    async with db.unit_of_work(org) as uow:
        return await store.differences(uow.conn, org, limit)


async def organizations(db: Database) -> list[uuid.UUID]:
    async with db.unit_of_work(None) as uow:
        return await store.organizations(uow.conn)
