"""The plan catalog and coupons (platform-wide tables: no tenant column, no RLS)."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

from chassis.db import Connection

_PLAN = ("SELECT p.*, p.version = (SELECT max(q.version) FROM billing.plans q WHERE q.code = p.code) AS current "
         "FROM billing.plans p")


def _plan(r: Any) -> dict:
    d = dict(r)
    for key in ("entitlements", "usage_prices"):
        d[key] = json.loads(d[key]) if isinstance(d.get(key), str) else d.get(key) or {}
    return d


async def list_plans(conn: Connection, *, all_versions: bool) -> list[dict]:
    where = "" if all_versions else (" WHERE p.version = (SELECT max(q.version) FROM billing.plans q "
                                     "WHERE q.code = p.code)")
    rows = (await conn.execute(f"{_PLAN}{where} ORDER BY p.code, p.version")).all()
    return [_plan(r) for r in rows]


async def get(conn: Connection, plan_id: uuid.UUID) -> dict | None:
    r = (await conn.execute(f"{_PLAN} WHERE p.id = :id", {"id": plan_id})).first()
    return _plan(r) if r else None


async def current(conn: Connection, code: str) -> dict | None:
    r = (await conn.execute(f"{_PLAN} WHERE p.code = :code ORDER BY p.version DESC LIMIT 1", {"code": code})).first()
    return _plan(r) if r else None


async def insert_version(conn: Connection, values: dict[str, Any]) -> dict:
    """The next version of the code (serialized per code by an advisory lock on it)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('billing.plans:' || :code))", {"code": values["code"]})
    plan_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO billing.plans (id, code, version, name, currency, monthly_price, yearly_price, trial_days, "
        "tax_rate, entitlements, usage_prices, created_by) SELECT :id, :code, COALESCE(max(version), 0) + 1, :name, "
        ":currency, :monthly, :yearly, :trial_days, :tax_rate, CAST(:entitlements AS jsonb), "
        "CAST(:usage_prices AS jsonb), :created_by "
        "FROM billing.plans WHERE code = :code",
        {"id": plan_id, "code": values["code"], "name": values["name"], "currency": values["currency"],
         "monthly": values["prices"].get("monthly"), "yearly": values["prices"].get("yearly"),
         "trial_days": values["trial_days"], "tax_rate": values["tax_rate"],
         "entitlements": json.dumps(values["entitlements"]),
         "usage_prices": json.dumps(values.get("usage_prices") or {}), "created_by": values["created_by"]})
    return await get(conn, plan_id)


async def insert_coupon(conn: Connection, c: dict[str, Any]) -> dict | None:
    r = (await conn.execute(
        "INSERT INTO billing.coupons (code, percent_off, amount_off, currency, duration, duration_periods) "
        "VALUES (:code, :percent_off, :amount_off, :currency, :duration, :duration_periods) "
        "ON CONFLICT (code) DO NOTHING RETURNING *", c)).first()
    return dict(r) if r else None


async def coupon(conn: Connection, code: str) -> dict | None:
    r = (await conn.execute("SELECT * FROM billing.coupons WHERE code = :code", {"code": code})).first()
    return dict(r) if r else None


def prices(plan: dict) -> dict[str, Decimal | None]:
    return {"monthly": plan["monthly_price"], "yearly": plan["yearly_price"]}
