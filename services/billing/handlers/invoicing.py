"""Issuing an invoice inside a unit of work: lines, the subscription's coupon, the plan's tax,
exact totals, a gapless number on finalization, and its collection."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from givance.events.v1 import billing_events_pb2

from chassis.convert import money
from chassis.db import UnitOfWork
from services.billing.domain import invoices as rules
from services.billing.domain import usage as usage_rules
from services.billing.domain.invoices import Line
from services.billing.handlers import payment_methods
from services.billing.providers.platform_payments import PlatformCharger
from services.billing.store import invoices as store
from services.billing.store import plans as plan_store
from services.billing.store import platform as platform_store
from services.billing.store import subscriptions as sub_store
from services.billing.store import usage as usage_store


def invoice_event(inv: dict, number: int | None = None) -> billing_events_pb2.InvoiceEvent:
    return billing_events_pb2.InvoiceEvent(invoice_id=str(inv["id"]), number=rules.number_text(number or inv["number"]),
                                           status=inv["status"], total=money(inv["total"], inv["currency"]))


async def issue(uow: UnitOfWork, org: uuid.UUID, sub: dict, plan: dict, lines: list[Line], now: datetime,
                period: tuple[datetime, datetime]) -> dict:
    """A finalized (open) invoice for the subscription; its coupon applies (and is used up)."""
    discount = Decimal(0)
    subtotal = sum((line.amount for line in lines), Decimal(0))
    if sub.get("coupon_code") and sub.get("coupon_periods_left") != 0:
        coupon = await plan_store.coupon(uow.conn, sub["coupon_code"])
        if coupon and (coupon["amount_off"] is None or coupon["currency"] == plan["currency"]):
            discount = rules.discount_of(subtotal, coupon["percent_off"], coupon["amount_off"])
            if discount > 0 and sub["coupon_periods_left"] is not None and sub["coupon_periods_left"] > 0:
                left = sub["coupon_periods_left"] - 1
                await sub_store.update(uow.conn, org, {"coupon_periods_left": left,
                                                       "coupon_code": sub["coupon_code"] if left else None})
    t = rules.totals(lines, discount, plan["tax_rate"])
    invoice_id = await store.insert(uow.conn, org, {
        "subscription_id": sub["id"], "currency": plan["currency"], "period_start": period[0],
        "period_end": period[1]})
    await store.add_lines(uow.conn, org, invoice_id, [
        {"kind": x.kind, "description": x.description, "quantity": x.quantity, "unit_amount": x.unit_amount,
         "amount": x.amount} for x in lines])
    await store.set_totals(uow.conn, org, invoice_id, {"subtotal": t.subtotal, "discount": t.discount,
                                                       "tax_rate": plan["tax_rate"], "tax": t.tax, "total": t.total})
    number = await store.finalize(uow.conn, org, invoice_id, now)
    inv = await store.get(uow.conn, org, invoice_id)
    uow.publish("billing.invoice.finalized", invoice_event(inv, number), aggregate_type="invoice",
                aggregate_id=str(invoice_id))
    return inv


async def usage_lines(uow: UnitOfWork, org: uuid.UUID, sub: dict, plan: dict, at: datetime, *,
                      from_trial: bool = False) -> tuple[list[Line], date]:
    """The metered lines of every calendar month closed before `at` and not invoiced yet, and the
    first month left to invoice. The month a trial ends in is free, like the trial."""
    until = usage_rules.period_of(at)
    if from_trial:
        return [], usage_rules.next_month(until)
    since = sub.get("usage_billed_until") or usage_rules.period_of(sub["created_at"])
    lines: list[Line] = []
    for month in usage_rules.months(since, until):
        counts = await usage_store.of_period(uow.conn, org, month)
        lines += usage_rules.overage_lines(month, counts, plan.get("usage_prices") or {})
    return lines, max(since, until)


PAID, FAILED, PENDING = "paid", "failed", "pending"


async def collect(uow: UnitOfWork, org: uuid.UUID, inv: dict, charger: PlatformCharger, now: datetime) -> str:
    """Charges an open invoice through the platform's provider: PAID (a zero total is paid at
    once), FAILED, or PENDING (the provider's event will tell). Each attempt with a provider
    payment id is recorded, so that event is applied once (handlers.platform)."""
    if inv["total"] > 0:
        attempt = await platform_store.attempts(uow.conn, org, inv["id"]) + 1
        result = await charger.charge(org, inv["id"], inv["total"], inv["currency"], attempt,
                                      saved=await payment_methods.saved(uow, org))
        if result.reference:
            await platform_store.record_charge(uow.conn, org, result.reference, inv["id"], attempt, inv["total"],
                                               inv["currency"], result.outcome, result.failure)
        if result.pending:
            return PENDING
        if not result.ok:
            uow.publish("billing.invoice.payment_failed", invoice_event(inv), aggregate_type="invoice",
                        aggregate_id=str(inv["id"]))
            return FAILED
    await mark_paid(uow, org, inv, now)
    return PAID


async def mark_paid(uow: UnitOfWork, org: uuid.UUID, inv: dict, now: datetime) -> dict:
    rules.check_move(inv["status"], rules.PAID, str(inv["id"]))
    await store.set_status(uow.conn, org, inv["id"], rules.PAID, now)
    inv = await store.get(uow.conn, org, inv["id"])
    uow.publish("billing.invoice.paid", invoice_event(inv), aggregate_type="invoice", aggregate_id=str(inv["id"]))
    return inv
