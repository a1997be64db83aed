"""Subscriptions (one per organization) and the due actions of the scheduler."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from chassis.db import Connection

_COLUMNS = ("plan_id", "billing_cycle", "status", "trial_end", "current_period_start", "current_period_end",
            "cancel_at_period_end", "pending_plan_id", "pending_cycle", "payment_attempts", "coupon_code",
            "coupon_periods_left", "paused_at", "cancelled_at", "usage_billed_until")


async def insert(conn: Connection, org: uuid.UUID, values: dict[str, Any]) -> dict | None:
    """None when the organization has a subscription already."""
    cols = ", ".join(values)
    r = (await conn.execute(
        f"INSERT INTO billing.subscriptions (id, organization_id, {cols}) VALUES (:id, :org, "
        f"{', '.join(':' + c for c in values)}) ON CONFLICT (organization_id) DO NOTHING RETURNING *",
        {"id": uuid.uuid4(), "org": org, **values})).first()
    return dict(r) if r else None


async def get(conn: Connection, org: uuid.UUID, *, for_update: bool = False) -> dict | None:
    lock = " FOR UPDATE" if for_update else ""
    r = (await conn.execute(f"SELECT * FROM billing.subscriptions WHERE organization_id = :org{lock}",
                            {"org": org})).first()
    return dict(r) if r else None


async def update(conn: Connection, org: uuid.UUID, values: dict[str, Any]) -> dict:
    unknown = set(values) - set(_COLUMNS)
    assert not unknown, unknown
    sets = ", ".join(f"{c} = :{c}" for c in values)
    r = (await conn.execute(
        f"UPDATE billing.subscriptions SET {sets}, version = version + 1, updated_at = now() "
        "WHERE organization_id = :org RETURNING *", {"org": org, **values})).one()
    return dict(r)


# -- due actions ------------------------------------------------------------------------------


async def schedule(conn: Connection, org: uuid.UUID, subscription_id: uuid.UUID, kind: str, period_key: str,
                   due_at: datetime) -> None:
    """Once per (subscription, kind, period): scheduling it again changes nothing, unless it was
    skipped (a renewal that came while the subscription was past due, which recovered since)."""
    await conn.execute(
        "INSERT INTO billing.due_actions (tenant_id, subscription_id, kind, period_key, due_at) "
        "VALUES (:org, :sid, :kind, :period, :due) ON CONFLICT (subscription_id, kind, period_key) DO UPDATE "
        "SET done_at = NULL, outcome = NULL, due_at = EXCLUDED.due_at, updated_at = now() "
        "WHERE billing.due_actions.outcome LIKE 'skipped%'",
        {"org": org, "sid": subscription_id, "kind": kind, "period": period_key, "due": due_at})


async def cancel_pending(conn: Connection, subscription_id: uuid.UUID, kinds: tuple[str, ...],
                         outcome: str) -> None:
    """Pending actions that no longer apply (a cancelled or paused subscription) are closed."""
    await conn.execute(
        "UPDATE billing.due_actions SET done_at = now(), outcome = :outcome, updated_at = now() "
        "WHERE subscription_id = :sid AND done_at IS NULL AND kind = ANY(:kinds)",
        {"sid": subscription_id, "kinds": list(kinds), "outcome": outcome})


async def claim_due(conn: Connection, now: datetime, limit: int) -> list[dict]:
    """Due actions no other replica holds, locked until this transaction ends."""
    rows = (await conn.execute(
        "SELECT id, tenant_id, subscription_id, kind, period_key, due_at FROM billing.due_actions "
        "WHERE done_at IS NULL AND due_at <= :now ORDER BY due_at, id LIMIT :limit FOR UPDATE SKIP LOCKED",
        {"now": now, "limit": limit})).all()
    return [dict(r) for r in rows]


async def claim_one(conn: Connection, action_id: int) -> dict | None:
    r = (await conn.execute(
        "SELECT id, tenant_id, subscription_id, kind, period_key, due_at FROM billing.due_actions "
        "WHERE id = :id AND done_at IS NULL FOR UPDATE SKIP LOCKED", {"id": action_id})).first()
    return dict(r) if r else None


async def done(conn: Connection, action_id: int, outcome: str) -> None:
    await conn.execute("UPDATE billing.due_actions SET done_at = now(), outcome = :outcome, updated_at = now() "
                       "WHERE id = :id", {"id": action_id, "outcome": outcome})


async def pending(conn: Connection, subscription_id: uuid.UUID) -> list[dict]:
    rows = (await conn.execute(
        "SELECT kind, period_key, due_at FROM billing.due_actions WHERE subscription_id = :sid AND done_at IS NULL "
        "ORDER BY due_at", {"sid": subscription_id})).all()
    return [dict(r) for r in rows]
