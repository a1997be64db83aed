"""Rate limits on links and codes sent to users, as the account use cases apply them (rules in
domain/rate_limits.py). Counted in PostgreSQL, so every replica shares them."""

from __future__ import annotations

import logging
import secrets

from chassis.db import Database
from chassis.errors import ResourceExhausted
from services.identity.domain import rate_limits as rules
from services.identity.handlers.caller import Client
from services.identity.store import rate_limits as store

log = logging.getLogger(__name__)


async def spend(db: Database, rate: rules.Rate, client: Client, target: str,
                account: str = "") -> None:
    """Counts one request against its target, the client's address and (for phone codes) the
    account; RESOURCE_EXHAUSTED with the wait when any of them is over its limit."""
    keys = rules.keys(rate, target, client.address)
    if account:
        keys.append((f"{rate.name}:account:{account}", rules.PHONE_CODE_PER_ACCOUNT))
    over: list[float] = []
    async with db.unit_of_work(None) as uow:
        for key, limit in keys:
            count, left = await store.count(uow.conn, key, rate.window)
            if count > limit:
                over.append(left)
        if secrets.randbelow(100) == 0:
            await store.prune(uow.conn, rate.window)
    if over:
        log.info("rate limit: a %s request refused", rate.name)
        raise ResourceExhausted(f"too many {rate.name.replace('_', ' ')} requests; retry later",
                                reason="RATE_LIMITED", retry_after=max(over))
