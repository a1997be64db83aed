"""The scheduler: due actions (trial end, renewal, dunning retries) claimed with FOR UPDATE SKIP
LOCKED, each done once, in its tenant's unit of work. Time comes from an injected clock (tests
move it; nothing sleeps until a date)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime

from chassis.db import Database, UnitOfWork
from services.billing.domain import subscriptions as rules
from services.billing.domain.clock import Clock
from services.billing.domain.invoices import Line
from services.billing.handlers import invoicing
from services.billing.handlers.subscriptions import publish_change, publish_entitlements
from services.billing.providers.platform_payments import PlatformCharger
from services.billing.store import invoices as invoice_store
from services.billing.store import plans as plan_store
from services.billing.store import subscriptions as store

log = logging.getLogger(__name__)


class Policy:
    """Dunning: retry days after the failed renewal, and the final status."""

    def __init__(self, retry_days: str = "1,3,5", final_status: str = rules.CANCELLED):
        self.retry_days = rules.retry_schedule(retry_days)
        if final_status not in (rules.CANCELLED, rules.UNPAID):
            raise ValueError("the final dunning status is cancelled or unpaid")
        self.final_status = final_status


async def run_due(db: Database, charger: PlatformCharger, now: datetime, policy: Policy, limit: int = 100,
                  only: uuid.UUID | None = None) -> int:
    """Does every action due at `now` (of one organization with `only`); returns how many it did.
    Safe with several replicas: each action is claimed in its own transaction."""
    tenant = " AND tenant_id = :only" if only is not None else ""
    async with db.unit_of_work(None) as uow:
        candidates = (await uow.conn.execute(
            f"SELECT id, tenant_id FROM billing.due_actions WHERE done_at IS NULL AND due_at <= :now{tenant} "
            "ORDER BY due_at, id LIMIT :limit", {"now": now, "limit": limit, "only": only})).all()
    done = 0
    for c in candidates:
        async with db.unit_of_work(c["tenant_id"]) as uow:
            action = await store.claim_one(uow.conn, c["id"])
            if action is None:  # another replica holds it, or did it
                continue
            outcome = await _act(uow, action, charger, now, policy)
            await store.done(uow.conn, action["id"], outcome)
            done += 1
    return done


async def _act(uow: UnitOfWork, action: dict, charger: PlatformCharger, now: datetime, policy: Policy) -> str:
    org: uuid.UUID = action["tenant_id"]
    sub = await store.get(uow.conn, org, for_update=True)
    if sub is None or sub["id"] != action["subscription_id"]:
        return "no_subscription"
    if action["kind"] in ("trial_end", "renew"):
        if sub["status"] not in (rules.TRIAL, rules.ACTIVE):
            return f"skipped_{sub['status']}"
        if action["period_key"] != sub["current_period_end"].isoformat():
            return "stale_period"
        return await _renew(uow, org, sub, charger, now, policy, from_trial=action["kind"] == "trial_end")
    if action["kind"] == "dunning_retry":
        if sub["status"] != rules.PAST_DUE:
            return f"skipped_{sub['status']}"
        return await _retry(uow, org, sub, charger, now, policy)
    return "unknown_kind"


async def _renew(uow: UnitOfWork, org: uuid.UUID, sub: dict, charger: PlatformCharger, now: datetime,
                 policy: Policy, *, from_trial: bool) -> str:
    plan = await plan_store.get(uow.conn, sub["plan_id"])
    if sub["cancel_at_period_end"]:
        sub = await store.update(uow.conn, org, {"status": rules.CANCELLED, "cancelled_at": sub["current_period_end"],
                                                 "cancel_at_period_end": False})
        publish_change(uow, sub, plan, "cancelled")
        publish_entitlements(uow, org, plan, sub["status"], now)
        return "cancelled"
    start = sub["current_period_end"]
    # usage of the closed months, in arrears, priced by the plan they were used on (a trial's months are free)
    usage, billed_until = await invoicing.usage_lines(uow, org, sub, plan, start, from_trial=from_trial)
    changes: dict = {"usage_billed_until": billed_until}
    if sub["pending_plan_id"] is not None:  # a downgrade takes effect with the new period
        plan = await plan_store.get(uow.conn, sub["pending_plan_id"])
        changes |= {"plan_id": plan["id"], "billing_cycle": sub["pending_cycle"] or sub["billing_cycle"],
                    "pending_plan_id": None, "pending_cycle": None}
    cycle = changes.get("billing_cycle", sub["billing_cycle"])
    end = rules.period_end(start, cycle)
    sub = await store.update(uow.conn, org, {**changes, "current_period_start": start, "current_period_end": end,
                                             "payment_attempts": 0})
    price = plan_store.prices(plan)[cycle]
    invoice = await invoicing.issue(uow, org, sub, plan, [Line("plan", f"{plan['name']} (v{plan['version']}), "
                                                                       f"{cycle}", price), *usage], now, (start, end))
    if "plan_id" in changes:
        publish_entitlements(uow, org, plan, rules.ACTIVE, now)
    outcome = await invoicing.collect(uow, org, invoice, charger, now)
    if outcome != invoicing.FAILED:  # paid, or processing: the provider's event settles it (handlers.platform)
        sub = await store.update(uow.conn, org, {"status": rules.ACTIVE})
        await store.schedule(uow.conn, org, sub["id"], "renew", end.isoformat(), end)
        publish_change(uow, sub, plan, "activated" if from_trial else "renewed")
        return outcome
    return await failed(uow, org, sub, plan, now, policy, attempts=1)


async def failed(uow: UnitOfWork, org: uuid.UUID, sub: dict, plan: dict, now: datetime, policy: Policy,
                 attempts: int) -> str:
    """A payment of the subscription's invoice failed (`attempts` so far in this period): past due
    with the next retry due, or the final status when the schedule is spent."""
    when = rules.next_retry(sub["current_period_start"], attempts, policy.retry_days)
    if when is None:
        final = policy.final_status
        values = {"status": final, "payment_attempts": attempts}
        if final == rules.CANCELLED:
            values["cancelled_at"] = now
        sub = await store.update(uow.conn, org, values)
        for inv in await invoice_store.open_for_subscription(uow.conn, org, sub["id"]):
            await invoice_store.set_status(uow.conn, org, inv["id"], "uncollectible", now)
            inv = await invoice_store.get(uow.conn, org, inv["id"])
            uow.publish("billing.invoice.uncollectible", invoicing.invoice_event(inv), aggregate_type="invoice",
                        aggregate_id=str(inv["id"]))
        publish_change(uow, sub, plan, final)
        publish_entitlements(uow, org, plan, final, now)
        return final
    was = sub["status"]
    sub = await store.update(uow.conn, org, {"status": rules.PAST_DUE, "payment_attempts": attempts})
    await store.schedule(uow.conn, org, sub["id"], "dunning_retry",
                         f"{sub['current_period_start'].isoformat()}#{attempts}", when)
    if was != rules.PAST_DUE:
        publish_change(uow, sub, plan, "past_due")
    return "payment_failed"


async def recover(uow: UnitOfWork, org: uuid.UUID, sub: dict, plan: dict, now: datetime) -> dict:
    """Every open invoice of a past-due (or unpaid) subscription is paid: active again, its
    retries closed, its renewal due at the period's end."""
    was = sub["status"]
    sub = await store.update(uow.conn, org, {"status": rules.ACTIVE, "payment_attempts": 0})
    await store.cancel_pending(uow.conn, sub["id"], ("dunning_retry",), "recovered")
    end = sub["current_period_end"]
    await store.schedule(uow.conn, org, sub["id"], "renew", end.isoformat(), end)
    publish_change(uow, sub, plan, "recovered")
    if was == rules.UNPAID:
        publish_entitlements(uow, org, plan, rules.ACTIVE, now)
    return sub


async def _retry(uow: UnitOfWork, org: uuid.UUID, sub: dict, charger: PlatformCharger, now: datetime,
                 policy: Policy) -> str:
    plan = await plan_store.get(uow.conn, sub["plan_id"])
    for inv in await invoice_store.open_for_subscription(uow.conn, org, sub["id"]):
        outcome = await invoicing.collect(uow, org, inv, charger, now)
        if outcome == invoicing.FAILED:
            return await failed(uow, org, sub, plan, now, policy, attempts=sub["payment_attempts"] + 1)
        if outcome == invoicing.PENDING:  # the provider's event recovers it, or fails it into the next retry
            return outcome
    await recover(uow, org, sub, plan, now)
    return "paid"


class Scheduler:
    """Beside the server: polls for due actions every `poll_seconds` (by the clock's time)."""

    def __init__(self, db: Database, charger: PlatformCharger, clock: Clock, policy: Policy,
                 poll_seconds: float = 5.0, batch: int = 100):
        self.db, self.charger, self.clock, self.policy = db, charger, clock, policy
        self.poll_seconds, self.batch = poll_seconds, batch
        self._stop = asyncio.Event()

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                while await run_due(self.db, self.charger, self.clock.now(), self.policy, self.batch) >= self.batch:
                    pass
            except Exception:  # the database is away: the next poll tries again
                log.warning("billing scheduler: a pass failed; retrying at the next poll", exc_info=True)
            try:
                await asyncio.wait_for(self._stop.wait(), self.poll_seconds)
            except TimeoutError:
                pass

    async def stop(self) -> None:
        self._stop.set()
