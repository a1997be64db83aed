"""The catalog: reads for every organization; new plan versions and coupons for platform operators
(the interceptor checks platform.plans.write, which only an operator's token carries)."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal, InvalidOperation

from chassis import context
from chassis.db import Database
from chassis.errors import AlreadyExists, NotFound, Violations
from chassis.resource import parse_id
from services.billing.domain import plans as rules
from services.billing.domain.plans import PlanFields
from services.billing.store import plans as store

COUPON_CODE = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,49}$")


async def list_plans(db: Database, org: uuid.UUID, all_versions: bool) -> list[dict]:
    async with db.unit_of_work(org) as uow:
        return await store.list_plans(uow.conn, all_versions=all_versions)


async def get_plan(db: Database, org: uuid.UUID, plan_id: str) -> dict:
    pid = parse_id(plan_id, "id")
    async with db.unit_of_work(org) as uow:
        plan = await store.get(uow.conn, pid)
    if plan is None:
        raise NotFound(f"plan {plan_id} not found")
    return plan


async def publish_plan(db: Database, org: uuid.UUID, fields: PlanFields) -> dict:
    v = Violations()
    rate = rules.check(fields, v)
    v.raise_if_any()
    ctx = context.current()
    async with db.unit_of_work(org) as uow:
        plan = await store.insert_version(uow.conn, {
            "code": fields.code, "name": fields.name.strip(), "currency": fields.currency, "prices": fields.prices,
            "trial_days": fields.trial_days, "tax_rate": rate,
            "entitlements": {k: fields.entitlements.get(k, 0) for k in rules.ENTITLEMENT_KEYS},
            "usage_prices": rules.usage_prices(fields),
            "created_by": ctx.principal.subject if ctx.principal else ""})
        uow.audit("billing.plan.publish", "plan", str(plan["id"]),
                  after={"code": plan["code"], "version": plan["version"]})
        return plan


def _decimal(text: str, field: str, v: Violations) -> Decimal | None:
    if not text:
        return None
    try:
        value = Decimal(text)
        if not value.is_finite():
            raise InvalidOperation
        return value
    except (InvalidOperation, ValueError):
        v.add(field, "must be a decimal number")
        return None


async def create_coupon(db: Database, org: uuid.UUID, code: str, percent_off: str, amount_off: str, currency: str,
                        duration: str | None, periods: int) -> dict:
    v = Violations()
    code = (code or "").strip().upper()
    if not COUPON_CODE.match(code):
        v.add("coupon.code", "must be 1 to 50 uppercase letters, digits or dashes")
    pct, amt = _decimal(percent_off, "coupon.percent_off", v), _decimal(amount_off, "coupon.amount_off", v)
    if (pct is None) == (amt is None):
        v.add("coupon.percent_off", "exactly one of percent_off and amount_off is required")
    if pct is not None and not (0 < pct <= 100 and pct == pct.quantize(Decimal("0.01"))):
        v.add("coupon.percent_off", "must be more than 0 and at most 100, with at most 2 decimals")
    if amt is not None:
        if not (0 < amt < Decimal("1000000") and amt == amt.quantize(Decimal("0.01"))):
            v.add("coupon.amount_off", "must be positive with at most 2 decimals")
        if not rules.CURRENCY.match(currency or ""):
            v.add("coupon.currency_code", "an amount_off needs an ISO 4217 currency")
    if duration is None:
        v.add("coupon.duration", "is required")
    elif duration == "repeating" and not 1 <= periods <= 120:
        v.add("coupon.duration_periods", "a repeating coupon lasts 1 to 120 periods")
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        coupon = await store.insert_coupon(uow.conn, {
            "code": code, "percent_off": pct, "amount_off": amt, "currency": currency if amt is not None else None,
            "duration": duration, "duration_periods": periods if duration == "repeating" else None})
        if coupon is None:
            raise AlreadyExists(f"coupon {code} exists", reason="COUPON_EXISTS")
        uow.audit("billing.coupon.create", "coupon", code)
        return coupon

