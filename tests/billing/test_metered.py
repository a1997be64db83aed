"""Metered usage on invoices: what a closed calendar month used over the plan version's included
quantity, in whole packages at the plan's price, with the plan's tax and the coupon, exact in
decimal; a trial's usage is free."""

import uuid
from datetime import UTC, date, timedelta
from decimal import Decimal

import grpc
from givance.billing.v1 import invoice_service_pb2 as ipb
from givance.billing.v1 import plan_pb2
from givance.billing.v1 import plan_service_pb2 as ppb
from givance.billing.v1 import subscription_service_pb2 as spb

from chassis.convert import from_money
from services.billing.domain.invoices import Line, discount_of, totals
from services.billing.domain.subscriptions import add_months
from services.billing.domain.usage import next_month, overage_lines, period_of
from services.billing.store import usage as usage_store
from tests.billing.conftest import due, subscribed
from tests.helpers import fails, field_violations

PRICES = {"emails": {"included": 2000, "package": 1000, "price": "1.00"},
          "ai_tokens": {"included": 100000, "package": 100000, "price": "2.00"}}


def test_overage_is_billed_in_whole_packages_and_totals_are_exact():
    month = date(2027, 1, 1)
    lines = overage_lines(month, {"emails": 4500, "ai_tokens": 200_001, "donations": 7}, PRICES)
    assert [(x.kind, x.quantity, x.unit_amount, x.amount) for x in lines] == [
        ("usage", 2, Decimal("2.00"), Decimal("4.00")),  # ai_tokens: 100,001 over -> 2 packages
        ("usage", 3, Decimal("1.00"), Decimal("3.00"))]  # emails: 2,500 over -> 3 packages
    assert lines[1].description == "Emails sent, January 2027: 4,500 used, 2,000 included, 3 x 1,000 over"
    assert overage_lines(month, {"emails": 2000}, PRICES) == []  # exactly the included quantity
    all_lines = [Line("plan", "Starter", Decimal("29.00")), *lines]
    t = totals(all_lines, Decimal(0), Decimal("0.2"))
    assert (t.subtotal, t.tax, t.total) == (Decimal("36.00"), Decimal("7.20"), Decimal("43.20"))
    off = discount_of(t.subtotal, Decimal("12.5"), None)
    t = totals(all_lines, off, Decimal("0.0825"))
    assert (t.discount, t.tax, t.total) == (Decimal("4.50"), Decimal("2.60"), Decimal("34.10"))


async def test_a_renewal_invoices_the_closed_months_usage_with_the_plans_tax(stubs, tenant, operator, billing_db):
    await subscribed(stubs, tenant)
    plan = plan_pb2.Plan(code=f"m{tenant.org_id[:8]}", name="Metered", currency_code="USD", trial_days=14,
                         tax_rate="0.2", prices=[plan_pb2.Price(billing_cycle=plan_pb2.BILLING_CYCLE_MONTHLY,
                                                                amount={"currency_code": "USD", "units": 10})],
                         usage_prices=[plan_pb2.UsagePrice(metric="emails", included=2000, package_size=1000,
                                                           package_price={"currency_code": "USD", "units": 1,
                                                                          "nanos": 500_000_000})])
    published = (await stubs.plans.PublishPlan(ppb.PublishPlanRequest(plan=plan), metadata=operator.md)).plan
    (u,) = published.usage_prices
    assert (u.metric, u.included, u.package_size, from_money(u.package_price)) == ("emails", 2000, 1000,
                                                                                    Decimal("1.5"))
    sub = (await stubs.subscriptions.ChangePlan(spb.ChangePlanRequest(plan_id=published.id), metadata=tenant.md)
           ).subscription
    trial_end = sub.trial_end_time.ToDatetime(tzinfo=UTC)
    org = uuid.UUID(tenant.org_id)
    free, billed = period_of(trial_end), next_month(period_of(trial_end))
    async with billing_db.unit_of_work(org) as uow:
        await usage_store.add(uow.conn, org, "emails", free, 9000, 0)  # the month the trial ends in: free
        await usage_store.add(uow.conn, org, "emails", billed, 4000, 1)
        await usage_store.add(uow.conn, org, "emails", billed, 500, 2)
    for months in range(3):  # trial end, then two renewals
        assert await due(billing_db, tenant, add_months(trial_end, months) + timedelta(seconds=1)) == 1
    invoices = (await stubs.invoices.ListInvoices(ipb.ListInvoicesRequest(), metadata=tenant.md)).invoices
    third, second, first = invoices
    for inv in (first, second):
        assert [x.kind for x in inv.lines] == ["plan"] and from_money(inv.total) == Decimal("12.00")
    assert [(x.kind, from_money(x.amount)) for x in third.lines] == [("plan", Decimal(10)), ("usage", Decimal("4.50"))]
    assert third.lines[1].description.startswith(f"Emails sent, {billed:%B %Y}: 4,500 used, 2,000 included, 3 x")
    assert (from_money(third.subtotal), from_money(third.tax), from_money(third.total)) == (
        Decimal("14.50"), Decimal("2.90"), Decimal("17.40"))


async def test_bad_usage_prices_name_their_fields(stubs, operator):
    plan = plan_pb2.Plan(code="metered-bad", name="Bad", currency_code="USD",
                         prices=[plan_pb2.Price(billing_cycle=plan_pb2.BILLING_CYCLE_MONTHLY,
                                                amount={"currency_code": "USD", "units": 10})],
                         usage_prices=[plan_pb2.UsagePrice(metric="bogus", included=-1, package_size=0),
                                       plan_pb2.UsagePrice(metric="emails", package_size=1,
                                                           package_price={"currency_code": "EUR", "units": 1})])
    err = await fails(stubs.plans.PublishPlan(ppb.PublishPlanRequest(plan=plan), metadata=operator.md),
                      grpc.StatusCode.INVALID_ARGUMENT)
    assert {"plan.usage_prices[0].metric", "plan.usage_prices[0].included", "plan.usage_prices[0].package_size",
            "plan.usage_prices[1].package_price.currency_code"} <= set(field_violations(err))
