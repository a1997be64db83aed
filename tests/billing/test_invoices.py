"""Invoices: coupons, taxes per plan, exact totals, gapless numbers, immutability once
finalized, credit notes, voiding, the PDF."""

import uuid
from datetime import UTC, timedelta
from decimal import Decimal

import asyncpg
import grpc
import pytest
from givance.billing.v1 import invoice_pb2, plan_pb2
from givance.billing.v1 import invoice_service_pb2 as ipb
from givance.billing.v1 import plan_service_pb2 as ppb
from givance.billing.v1 import subscription_service_pb2 as spb

from chassis.convert import from_money
from chassis.settings import ServiceSettings, plain_dsn
from tests.billing.conftest import due, subscribed
from tests.helpers import fails, field_violations


async def _taxed_plan(stubs, operator, price=10, tax="0.2"):
    plan = plan_pb2.Plan(code=f"tax-{uuid.uuid4().hex[:8]}", name="Taxed", currency_code="USD", trial_days=14,
                         tax_rate=tax, prices=[plan_pb2.Price(billing_cycle=plan_pb2.BILLING_CYCLE_MONTHLY,
                                                              amount={"currency_code": "USD", "units": price})],
                         entitlements=plan_pb2.Entitlements(seats=5, donors=100))
    return (await stubs.plans.PublishPlan(ppb.PublishPlanRequest(plan=plan), metadata=operator.md)).plan


async def test_coupon_and_tax_make_exact_totals_and_credit_notes_correct_a_finalized_invoice(
        stubs, operator, billing_db, admin_db):
    org = operator  # the operator's own organization is the customer here
    sub = await subscribed(stubs, org)
    plan = await _taxed_plan(stubs, operator)
    await stubs.subscriptions.ChangePlan(spb.ChangePlanRequest(plan_id=plan.id), metadata=org.md)
    code = f"HALF-{uuid.uuid4().hex[:6].upper()}"
    await stubs.plans.CreateCoupon(ppb.CreateCouponRequest(coupon=ppb.Coupon(
        code=code, percent_off="25", duration=ppb.COUPON_DURATION_REPEATING, duration_periods=1)),
        metadata=operator.md)
    applied = (await stubs.subscriptions.ApplyCoupon(spb.ApplyCouponRequest(code=code.lower()), metadata=org.md)
               ).subscription
    assert applied.coupon_code == code and applied.coupon_periods_left == 1
    trial_end = sub.trial_end_time.ToDatetime(tzinfo=UTC)
    await due(billing_db, org, trial_end + timedelta(seconds=1))
    (inv,) = (await stubs.invoices.ListInvoices(ipb.ListInvoicesRequest(), metadata=org.md)).invoices
    # 10.00 - 25% = 7.50; 20% tax = 1.50; total 9.00
    assert (from_money(inv.subtotal), from_money(inv.discount), from_money(inv.tax), from_money(inv.total)) == (
        Decimal("10"), Decimal("2.5"), Decimal("1.5"), Decimal("9"))
    assert inv.tax_rate == "0.2" and inv.status == invoice_pb2.INVOICE_STATUS_PAID
    # the coupon is spent: the next period pays in full
    after = (await stubs.subscriptions.GetSubscription(spb.GetSubscriptionRequest(), metadata=org.md)).subscription
    assert after.coupon_code == ""
    await due(billing_db, org, after.current_period_end_time.ToDatetime(tzinfo=UTC) + timedelta(seconds=1))
    second = (await stubs.invoices.ListInvoices(ipb.ListInvoicesRequest(), metadata=org.md)).invoices[0]
    assert from_money(second.total) == Decimal("12") and second.number == "INV-000002"

    # a finalized invoice is never edited, even by the service's own role
    conn = await asyncpg.connect(plain_dsn(ServiceSettings().app_database_url("billing")))
    try:
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.tenant_id', $1, true)", org.org_id)
            with pytest.raises(asyncpg.CheckViolationError):
                await conn.execute("UPDATE billing.invoices SET total = 1 WHERE id = $1", uuid.UUID(inv.id))
    finally:
        await conn.close()

    # corrections are credit notes: at most the invoice's total, numbered in the same sequence
    err = await fails(stubs.invoices.CreateCreditNote(ipb.CreateCreditNoteRequest(
        invoice_id=inv.id, amount={"currency_code": "USD", "units": 10}, reason="too much"), metadata=operator.md),
        grpc.StatusCode.INVALID_ARGUMENT)
    assert "amount" in field_violations(err)
    req = ipb.CreateCreditNoteRequest(invoice_id=inv.id, reason="service outage", request_id="cn-1",
                                      amount={"currency_code": "USD", "units": 4, "nanos": 500_000_000})
    note = (await stubs.invoices.CreateCreditNote(req, metadata=operator.md)).credit_note
    again = (await stubs.invoices.CreateCreditNote(req, metadata=operator.md)).credit_note
    assert again.id == note.id  # AIP-155
    assert note.kind == invoice_pb2.INVOICE_KIND_CREDIT_NOTE and note.corrects_invoice_id == inv.id
    assert from_money(note.total) == Decimal("-4.5") and note.number == "INV-000003"
    still = (await stubs.invoices.GetInvoice(ipb.GetInvoiceRequest(id=inv.id), metadata=org.md)).invoice
    assert from_money(still.total) == Decimal("9")  # unchanged
    await fails(stubs.invoices.CreateCreditNote(ipb.CreateCreditNoteRequest(
        invoice_id=inv.id, amount={"currency_code": "USD", "units": 5}, reason="more"), metadata=operator.md),
        grpc.StatusCode.INVALID_ARGUMENT)  # 4.50 + 5 > 9.00
    numbers = [r["number"] for r in await admin_db.fetch(
        "SELECT number FROM billing.invoices WHERE organization_id = $1 ORDER BY number", uuid.UUID(org.org_id))]
    assert numbers == list(range(1, len(numbers) + 1))


async def test_void_an_open_invoice_and_the_pdf(stubs, operator, billing_db):
    org = operator
    sub = await subscribed(stubs, org)
    from services.billing.providers.platform_payments import DevelopmentCharger

    await due(billing_db, org, sub.trial_end_time.ToDatetime(tzinfo=UTC) + timedelta(seconds=1),
              charger=DevelopmentCharger(declines={uuid.UUID(org.org_id)}))
    (inv,) = (await stubs.invoices.ListInvoices(ipb.ListInvoicesRequest(), metadata=org.md)).invoices
    assert inv.status == invoice_pb2.INVOICE_STATUS_OPEN
    pdf = await stubs.invoices.GetInvoicePdf(ipb.GetInvoicePdfRequest(id=inv.id), metadata=org.md)
    assert pdf.content.startswith(b"%PDF-") and pdf.content_type == "application/pdf"
    assert pdf.filename == "INV-000001.pdf" and len(pdf.content) > 500
    voided = (await stubs.invoices.VoidInvoice(ipb.VoidInvoiceRequest(id=inv.id), metadata=operator.md)).invoice
    assert voided.status == invoice_pb2.INVOICE_STATUS_VOID
    await fails(stubs.invoices.VoidInvoice(ipb.VoidInvoiceRequest(id=inv.id), metadata=operator.md),
                grpc.StatusCode.FAILED_PRECONDITION)
    await fails(stubs.invoices.ListInvoices(ipb.ListInvoicesRequest(page_size=-1), metadata=org.md),
                grpc.StatusCode.INVALID_ARGUMENT)
