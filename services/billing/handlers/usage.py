"""Usage counted from events (idempotent through the consumer's inbox), read per period; the
entitlements of the organization's plan."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from chassis.db import Database, UnitOfWork
from services.billing.domain import usage as rules
from services.billing.handlers.subscriptions import entitlements_of
from services.billing.store import plans as plan_store
from services.billing.store import subscriptions as sub_store
from services.billing.store import usage as store


async def count(uow: UnitOfWork, org: uuid.UUID, metric: str, at: datetime, quantity: int, event_id: str) -> None:
    """Counts an event's usage (once: the consumer's inbox), on the counter shard its id picks."""
    if quantity > 0:
        await store.add(uow.conn, org, metric, rules.period_of(at), quantity, uuid.UUID(event_id).int)


async def get_usage(db: Database, org: uuid.UUID, day: date) -> tuple[date, dict[str, int], dict[str, int]]:
    period = rules.period_of(day)
    async with db.unit_of_work(org) as uow:
        counts = await store.of_period(uow.conn, org, period)
        sub = await sub_store.get(uow.conn, org)
        plan = await plan_store.get(uow.conn, sub["plan_id"]) if sub else None
    limits = entitlements_of(plan, sub["status"] if sub else "cancelled")
    return period, counts, {m: limits.get(k, 0) for m, k in rules.LIMIT_OF.items()}


async def get_entitlements(db: Database, org: uuid.UUID) -> tuple[dict[str, int], str]:
    async with db.unit_of_work(org) as uow:
        sub = await sub_store.get(uow.conn, org)
        plan = await plan_store.get(uow.conn, sub["plan_id"]) if sub else None
    return entitlements_of(plan, sub["status"] if sub else "cancelled"), plan["code"] if plan else ""
