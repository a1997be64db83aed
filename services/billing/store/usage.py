"""Usage counters per organization, metric and monthly period."""

from __future__ import annotations

import uuid
from datetime import date

from chassis.db import Connection

SHARDS = 16


async def add(conn: Connection, org: uuid.UUID, metric: str, period: date, quantity: int, shard: int) -> None:
    """Adds to one of the counter's shards (the caller spreads them, e.g. by event id)."""
    await conn.execute(
        "INSERT INTO billing.usage_counters (organization_id, metric, period, shard, quantity) "
        "VALUES (:org, :m, :p, :s, :q) ON CONFLICT (organization_id, period, metric, shard) DO UPDATE SET "
        "quantity = billing.usage_counters.quantity + EXCLUDED.quantity, updated_at = now()",
        {"org": org, "m": metric, "p": period, "s": shard % SHARDS, "q": quantity})


async def of_period(conn: Connection, org: uuid.UUID, period: date) -> dict[str, int]:
    rows = (await conn.execute("SELECT metric, sum(quantity)::bigint AS quantity FROM billing.usage_counters "
                               "WHERE organization_id = :org AND period = :p GROUP BY metric",
                               {"org": org, "p": period})).all()
    return {r["metric"]: r["quantity"] for r in rows}
