"""The revocations in force, for every service's token verifier (chassis.revocation): listed
by RevocationService (other services) and read directly by identity's own listener; pruned
once the tokens they refuse have all expired."""

from __future__ import annotations

import asyncio
import logging

from chassis.db import Database
from chassis.revocation import Revocation, RevocationSource
from services.identity.store import revocations as store

log = logging.getLogger(__name__)

PRUNE_EVERY_SECONDS = 300.0
# Earlier than any revocation and within PostgreSQL's timestamp range.
_EPOCH_MAX = 1e11


async def in_force(db: Database, since: float | None) -> tuple[list[Revocation], float]:
    if since is not None:
        since = min(max(since, 0.0), _EPOCH_MAX)
    async with db.unit_of_work(None) as uow:
        return await store.in_force(uow.conn, since)


def source(db: Database) -> RevocationSource:
    """identity's own listener lists its table (no call to itself)."""

    async def listed(since: float | None) -> tuple[list[Revocation], float]:
        return await in_force(db, since)

    return listed


async def prune_forever(db: Database) -> None:
    """Background: forget expired revocations every few minutes."""
    while True:
        try:
            async with db.unit_of_work(None) as uow:
                await store.prune(uow.conn)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the database may be down; try again later
            log.warning("pruning revocations failed: %s", exc)
        await asyncio.sleep(PRUNE_EVERY_SECONDS)
