"""Subscription use cases: the trial a new organization starts with, reads, plan changes,
cancellation, pause and resume, coupons; every change publishes billing.subscription.* and
(where the plan changes) billing.entitlements.changed."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal

from givance.events.v1 import billing_events_pb2
from google.protobuf import timestamp_pb2

from chassis.db import Database, UnitOfWork
from chassis.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound
from chassis.resource import etag, parse_id
from services.billing.domain import plans as plan_rules
from services.billing.domain import subscriptions as rules
from services.billing.domain import usage as usage_rules
from services.billing.domain.invoices import Line
from services.billing.handlers import invoicing
from services.billing.providers.platform_payments import PlatformCharger
from services.billing.store import plans as plan_store
from services.billing.store import subscriptions as store

COUPON_CODE_MAX = 50


def _ts(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    t = timestamp_pb2.Timestamp()
    t.FromDatetime(value)
    return t


def publish_change(uow: UnitOfWork, sub: dict, plan: dict, what: str) -> None:
    uow.publish(f"billing.subscription.{what}", billing_events_pb2.SubscriptionChangedEvent(
        subscription_id=str(sub["id"]), organization_id=str(sub["organization_id"]), plan_id=str(plan["id"]),
        plan_code=plan["code"], status=sub["status"], billing_cycle=sub["billing_cycle"],
        current_period_end_time=_ts(sub["current_period_end"])), aggregate_type="subscription",
        aggregate_id=str(sub["organization_id"]))


def entitlements_of(plan: dict | None, status: str) -> dict[str, int]:
    """What a subscription allows: its plan's, while it is live or paused; nothing beyond the
    platform's floor once cancelled or unpaid (one seat, no new donors past those held)."""
    if plan is None or status in (rules.CANCELLED, rules.UNPAID):
        return {k: 0 for k in plan_rules.ENTITLEMENT_KEYS} | {"seats": 1}
    return {k: int(plan["entitlements"].get(k, 0)) for k in plan_rules.ENTITLEMENT_KEYS}


def publish_entitlements(uow: UnitOfWork, org: uuid.UUID, plan: dict, status: str, now: datetime) -> None:
    e = entitlements_of(plan, status)
    uow.publish("billing.entitlements.changed", billing_events_pb2.EntitlementsChangedEvent(
        organization_id=str(org), plan_code=plan["code"], decide_time=_ts(now), **e),
        aggregate_type="subscription", aggregate_id=str(org))


async def start_trial(uow: UnitOfWork, org: uuid.UUID, plan_code: str, now: datetime) -> dict | None:
    """identity.organization.created: the trial on the current version of `plan_code`; its end
    is a due action. None when the organization has a subscription already."""
    plan = await plan_store.current(uow.conn, plan_code)
    if plan is None:
        raise RuntimeError(f"billing: the trial plan {plan_code!r} is not in the catalog")
    trial_end = now + timedelta(days=plan["trial_days"])
    cycle = "monthly" if plan["monthly_price"] is not None else "yearly"
    status = rules.TRIAL if plan["trial_days"] > 0 else rules.ACTIVE
    end = trial_end if status == rules.TRIAL else rules.period_end(now, cycle)
    sub = await store.insert(uow.conn, org, {
        "plan_id": plan["id"], "billing_cycle": cycle, "status": status,
        "trial_end": trial_end if status == rules.TRIAL else None, "current_period_start": now,
        "current_period_end": end})
    if sub is None:
        return None
    kind = "trial_end" if status == rules.TRIAL else "renew"
    await store.schedule(uow.conn, org, sub["id"], kind, end.isoformat(), end)
    publish_change(uow, sub, plan, "created")
    publish_entitlements(uow, org, plan, sub["status"], now)
    return sub


async def _current(uow: UnitOfWork, org: uuid.UUID, given_etag: str = "") -> tuple[dict, dict]:
    sub = await store.get(uow.conn, org, for_update=True)
    if sub is None:
        raise NotFound("the organization has no subscription")
    if given_etag and given_etag != etag(sub["version"]):
        raise Aborted("the subscription changed since it was read; read it again", reason="STALE_ETAG")
    return sub, await plan_store.get(uow.conn, sub["plan_id"])


async def get_subscription(db: Database, org: uuid.UUID) -> tuple[dict, dict]:
    async with db.unit_of_work(org) as uow:
        sub = await store.get(uow.conn, org)
        if sub is None:
            raise NotFound("the organization has no subscription")
        return sub, await plan_store.get(uow.conn, sub["plan_id"])


async def change_plan(db: Database, org: uuid.UUID, plan_id: str, cycle: str | None, given_etag: str,
                      charger: PlatformCharger, now: datetime, *, end_trial: bool = False,
                      ) -> tuple[dict, dict, dict | None]:
    """Upgrade (more per month): now, with a prorated invoice for the rest of the period.
    Downgrade: at the end of the period (a due action). In a trial: now, without an invoice, or
    with `end_trial` the first period starts now, invoiced and charged."""
    pid = parse_id(plan_id, "plan_id")
    async with db.unit_of_work(org) as uow:
        sub, plan = await _current(uow, org, given_etag)
        rules.require(sub["status"], (rules.TRIAL, rules.ACTIVE), "changed")
        new = await plan_store.get(uow.conn, pid)
        if new is None:
            raise InvalidArgument.field("plan_id", "no such plan")
        if not new["current"]:
            raise InvalidArgument.field("plan_id", f"is an old version of {new['code']}; use its current version")
        cycle = cycle or sub["billing_cycle"]
        new_price = plan_store.prices(new).get(cycle)
        if new_price is None:
            raise InvalidArgument.field("billing_cycle", f"plan {new['code']} has no {cycle} price")
        if new["currency"] != plan["currency"]:
            raise InvalidArgument.field("plan_id", f"plan is in {new['currency']}; the subscription is in "
                                                   f"{plan['currency']}")
        if end_trial and sub["status"] != rules.TRIAL:
            raise FailedPrecondition("the subscription is not in a trial", reason="NOT_IN_TRIAL")
        if new["id"] == plan["id"] and cycle == sub["billing_cycle"] and not end_trial:
            raise FailedPrecondition("the subscription is on this plan already", reason="SAME_PLAN")
        old_monthly = plan_rules.monthly_equivalent(plan_store.prices(plan), sub["billing_cycle"])
        new_monthly = plan_rules.monthly_equivalent(plan_store.prices(new), cycle)
        invoice = None
        if end_trial:
            end = rules.period_end(now, cycle)
            sub = await store.update(uow.conn, org, {
                "plan_id": new["id"], "billing_cycle": cycle, "pending_plan_id": None, "pending_cycle": None,
                "trial_end": now, "current_period_start": now, "current_period_end": end,
                "usage_billed_until": usage_rules.next_month(usage_rules.period_of(now))})  # the trial's usage is free
            await store.cancel_pending(uow.conn, sub["id"], ("trial_end",), "trial ended early")
            invoice = await invoicing.issue(uow, org, sub, new, [Line("plan", f"{new['name']} (v{new['version']}), "
                                                                              f"{cycle}", new_price)], now, (now, end))
            if await invoicing.collect(uow, org, invoice, charger, now) != invoicing.FAILED:
                invoice = await invoicing.store.get(uow.conn, org, invoice["id"])
                sub = await store.update(uow.conn, org, {"status": rules.ACTIVE})
                await store.schedule(uow.conn, org, sub["id"], "renew", end.isoformat(), end)
                publish_change(uow, sub, new, "activated")
            else:
                sub = await store.update(uow.conn, org, {"status": rules.PAST_DUE, "payment_attempts": 1})
                # retried like a failed renewal (the scheduler's dunning takes it from there)
                await store.schedule(uow.conn, org, sub["id"], "dunning_retry", f"{now.isoformat()}#1",
                                     now + timedelta(days=1))
                publish_change(uow, sub, new, "past_due")
            publish_entitlements(uow, org, new, sub["status"], now)
        elif sub["status"] == rules.TRIAL:
            sub = await store.update(uow.conn, org, {"plan_id": new["id"], "billing_cycle": cycle,
                                                     "pending_plan_id": None, "pending_cycle": None})
            publish_change(uow, sub, new, "plan_changed")
            publish_entitlements(uow, org, new, sub["status"], now)
        elif new_monthly > old_monthly and cycle == sub["billing_cycle"]:
            old_price = plan_store.prices(plan)[sub["billing_cycle"]] or Decimal(0)
            start, end = sub["current_period_start"], sub["current_period_end"]
            credit = rules.prorate(old_price, start, end, now)
            charge = rules.prorate(new_price, start, end, now)
            lines = [Line("proration", f"Unused time on {plan['name']} (v{plan['version']})", -credit),
                     Line("proration", f"Remaining time on {new['name']} (v{new['version']})", charge)]
            sub = await store.update(uow.conn, org, {"plan_id": new["id"], "pending_plan_id": None,
                                                     "pending_cycle": None})
            invoice = await invoicing.issue(uow, org, sub, new, lines, now, (now, end))
            await invoicing.collect(uow, org, invoice, charger, now)  # unpaid, it stays open; dunning is renewals'
            invoice = await invoicing.store.get(uow.conn, org, invoice["id"])
            publish_change(uow, sub, new, "plan_changed")
            publish_entitlements(uow, org, new, sub["status"], now)
        else:  # a downgrade or a change of cycle: at the end of the period
            sub = await store.update(uow.conn, org, {"pending_plan_id": new["id"], "pending_cycle": cycle})
            publish_change(uow, sub, plan, "plan_change_scheduled")
        uow.audit("billing.subscription.change_plan", "subscription", str(sub["id"]),
                  before={"plan_id": str(plan["id"])}, after={"plan_id": str(new["id"]), "billing_cycle": cycle})
        return sub, await plan_store.get(uow.conn, sub["plan_id"]), invoice


async def cancel(db: Database, org: uuid.UUID, immediately: bool, given_etag: str, now: datetime) -> tuple[dict, dict]:
    async with db.unit_of_work(org) as uow:
        sub, plan = await _current(uow, org, given_etag)
        rules.require(sub["status"], (rules.TRIAL, rules.ACTIVE, rules.PAST_DUE, rules.PAUSED), "cancelled")
        if immediately or sub["status"] in (rules.TRIAL, rules.PAST_DUE, rules.PAUSED):
            sub = await store.update(uow.conn, org, {"status": rules.CANCELLED, "cancelled_at": now,
                                                     "cancel_at_period_end": False})
            await store.cancel_pending(uow.conn, sub["id"], ("renew", "trial_end", "dunning_retry"), "cancelled")
            publish_change(uow, sub, plan, "cancelled")
            publish_entitlements(uow, org, plan, sub["status"], now)
        else:
            sub = await store.update(uow.conn, org, {"cancel_at_period_end": True})
            publish_change(uow, sub, plan, "cancel_scheduled")
        uow.audit("billing.subscription.cancel", "subscription", str(sub["id"]), after={"immediately": immediately})
        return sub, plan


async def pause(db: Database, org: uuid.UUID, given_etag: str, now: datetime) -> tuple[dict, dict]:
    async with db.unit_of_work(org) as uow:
        sub, plan = await _current(uow, org, given_etag)
        rules.require(sub["status"], (rules.ACTIVE,), "paused")
        sub = await store.update(uow.conn, org, {"status": rules.PAUSED, "paused_at": now})
        await store.cancel_pending(uow.conn, sub["id"], ("renew",), "paused")
        publish_change(uow, sub, plan, "paused")
        uow.audit("billing.subscription.pause", "subscription", str(sub["id"]))
        return sub, plan


async def resume(db: Database, org: uuid.UUID, given_etag: str, now: datetime) -> tuple[dict, dict]:
    """A paused subscription starts a new period now (nothing is billed for the pause)."""
    async with db.unit_of_work(org) as uow:
        sub, plan = await _current(uow, org, given_etag)
        rules.require(sub["status"], (rules.PAUSED,), "resumed")
        sub = await store.update(uow.conn, org, {"status": rules.ACTIVE, "paused_at": None,
                                                 "current_period_start": now,
                                                 "current_period_end": rules.period_end(now, sub["billing_cycle"])})
        await store.schedule(uow.conn, org, sub["id"], "renew", sub["current_period_end"].isoformat(),
                             sub["current_period_end"])
        publish_change(uow, sub, plan, "resumed")
        uow.audit("billing.subscription.resume", "subscription", str(sub["id"]))
        return sub, plan


async def apply_coupon(db: Database, org: uuid.UUID, code: str) -> tuple[dict, dict]:
    code = (code or "").strip().upper()
    if not code or len(code) > COUPON_CODE_MAX:
        raise InvalidArgument.field("code", f"is required, at most {COUPON_CODE_MAX} characters")
    async with db.unit_of_work(org) as uow:
        sub, plan = await _current(uow, org)
        rules.require(sub["status"], (rules.TRIAL, rules.ACTIVE, rules.PAST_DUE, rules.PAUSED), "discounted")
        coupon = await plan_store.coupon(uow.conn, code)
        if coupon is None:
            raise InvalidArgument.field("code", "no such coupon")
        if coupon["amount_off"] is not None and coupon["currency"] != plan["currency"]:
            raise InvalidArgument.field("code", f"the coupon is in {coupon['currency']}, the plan in "
                                                f"{plan['currency']}")
        left = {"once": 1, "repeating": coupon["duration_periods"], "forever": -1}[coupon["duration"]]
        sub = await store.update(uow.conn, org, {"coupon_code": code, "coupon_periods_left": left})
        publish_change(uow, sub, plan, "coupon_applied")
        uow.audit("billing.subscription.apply_coupon", "subscription", str(sub["id"]), after={"coupon": code})
        return sub, plan
