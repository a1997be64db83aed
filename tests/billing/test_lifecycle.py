"""Trial -> active -> past_due -> cancelled (or unpaid), renewals and downgrades, driven by a
controllable clock through the scheduler's due actions; each acts once per period."""

import uuid
from datetime import UTC, timedelta
from decimal import Decimal

from givance.billing.v1 import invoice_pb2, subscription_pb2
from givance.billing.v1 import invoice_service_pb2 as ipb
from givance.billing.v1 import plan_service_pb2 as ppb
from givance.billing.v1 import subscription_service_pb2 as spb

from chassis.convert import from_money
from services.billing.domain.subscriptions import add_months
from services.billing.handlers import subscriptions as handlers
from services.billing.handlers.scheduler import Policy
from services.billing.providers.platform_payments import DevelopmentCharger
from tests.billing.conftest import due, subscribed

S = subscription_pb2


async def _sub(stubs, tenant):
    return (await stubs.subscriptions.GetSubscription(spb.GetSubscriptionRequest(), metadata=tenant.md)).subscription


async def _invoices(stubs, tenant):
    return list((await stubs.invoices.ListInvoices(ipb.ListInvoicesRequest(), metadata=tenant.md)).invoices)


def _end(ts):
    return ts.ToDatetime(tzinfo=UTC)


async def test_trial_to_active_to_past_due_to_cancelled_by_the_clock(stubs, tenant, billing_db, admin_db):
    sub = await subscribed(stubs, tenant)
    trial_end = _end(sub.trial_end_time)
    assert await due(billing_db, tenant, trial_end - timedelta(seconds=1)) == 0  # nothing before its time
    assert await due(billing_db, tenant, trial_end + timedelta(seconds=1)) == 1
    sub = await _sub(stubs, tenant)
    assert sub.status == S.SUBSCRIPTION_STATUS_ACTIVE
    assert _end(sub.current_period_start_time) == trial_end
    assert _end(sub.current_period_end_time) == add_months(trial_end, 1)
    (first,) = await _invoices(stubs, tenant)
    assert first.number == "INV-000001" and first.status == invoice_pb2.INVOICE_STATUS_PAID
    assert from_money(first.total) == Decimal("29")
    # the same moment again: nothing twice
    assert await due(billing_db, tenant, trial_end + timedelta(seconds=2)) == 0

    # the renewal's payment fails: past due, retried on days 1, 3 and 5, then cancelled
    declines = DevelopmentCharger(declines={uuid.UUID(tenant.org_id)})
    period_end = _end(sub.current_period_end_time)
    assert await due(billing_db, tenant, period_end + timedelta(seconds=1), charger=declines) == 1
    sub = await _sub(stubs, tenant)
    assert sub.status == S.SUBSCRIPTION_STATUS_PAST_DUE and sub.payment_attempts == 1
    renewal = (await _invoices(stubs, tenant))[0]
    assert renewal.number == "INV-000002" and renewal.status == invoice_pb2.INVOICE_STATUS_OPEN
    for day, attempts in ((1, 2), (3, 3)):
        assert await due(billing_db, tenant, period_end + timedelta(days=day, seconds=1), charger=declines) == 1
        assert (await _sub(stubs, tenant)).payment_attempts == attempts
    assert await due(billing_db, tenant, period_end + timedelta(days=5, seconds=1), charger=declines) == 1
    sub = await _sub(stubs, tenant)
    assert sub.status == S.SUBSCRIPTION_STATUS_CANCELLED
    assert (await _invoices(stubs, tenant))[0].status == invoice_pb2.INVOICE_STATUS_UNCOLLECTIBLE
    assert await due(billing_db, tenant, period_end + timedelta(days=60)) == 0  # nothing left to do
    kinds = [r["routing_key"] for r in await admin_db.fetch(
        "SELECT routing_key FROM billing.outbox WHERE tenant_id = $1 AND routing_key LIKE 'billing.subscription.%' "
        "ORDER BY id", uuid.UUID(tenant.org_id))]
    assert kinds == ["billing.subscription.created", "billing.subscription.activated",
                     "billing.subscription.past_due", "billing.subscription.cancelled"]


async def test_a_retry_that_pays_recovers_and_unpaid_is_the_other_ending(stubs, tenant, other_tenant, billing_db):
    for t, final in ((tenant, None), (other_tenant, "unpaid")):
        sub = await subscribed(stubs, t)
        declines = DevelopmentCharger(declines={uuid.UUID(t.org_id)})
        policy = Policy("2", final or "cancelled")
        await due(billing_db, t, _end(sub.trial_end_time) + timedelta(seconds=1), charger=declines, policy=policy)
        assert (await _sub(stubs, t)).status == S.SUBSCRIPTION_STATUS_PAST_DUE
        later = _end(sub.trial_end_time) + timedelta(days=2, seconds=1)
        await due(billing_db, t, later, charger=declines if final else None, policy=policy)
        after = await _sub(stubs, t)
        if final:
            assert after.status == S.SUBSCRIPTION_STATUS_UNPAID
        else:
            assert after.status == S.SUBSCRIPTION_STATUS_ACTIVE and after.payment_attempts == 0
            assert all(i.status == invoice_pb2.INVOICE_STATUS_PAID for i in await _invoices(stubs, t))


async def test_an_upgrade_is_prorated_exactly_and_a_downgrade_waits_for_the_period_end(stubs, tenant, billing_db):
    sub = await subscribed(stubs, tenant)
    start = _end(sub.trial_end_time)
    await due(billing_db, tenant, start + timedelta(seconds=1))
    plans = {p.code: p for p in (await stubs.plans.ListPlans(ppb.ListPlansRequest(), metadata=tenant.md)).plans}
    org = uuid.UUID(tenant.org_id)
    at = start + timedelta(days=10)
    changed, plan, invoice = await handlers.change_plan(billing_db, org, plans["growth"].id, None, "",
                                                        DevelopmentCharger(), at)
    assert plan["code"] == "growth" and changed["status"] == "active"
    end = add_months(start, 1)
    total, left = Decimal(int((end - start).total_seconds())), Decimal(int((end - at).total_seconds()))
    credit = (Decimal(29) * left / total).quantize(Decimal("0.01"))
    charge = (Decimal(99) * left / total).quantize(Decimal("0.01"))
    got = (await stubs.invoices.GetInvoice(ipb.GetInvoiceRequest(id=str(invoice["id"])), metadata=tenant.md)).invoice
    assert [from_money(x.amount) for x in got.lines] == [-credit, charge]
    assert from_money(got.total) == charge - credit and got.number == "INV-000002"
    assert got.status == invoice_pb2.INVOICE_STATUS_PAID
    # a downgrade is scheduled, not applied
    sub = await _sub(stubs, tenant)
    down = await stubs.subscriptions.ChangePlan(spb.ChangePlanRequest(plan_id=plans["starter"].id, etag=sub.etag),
                                                metadata=tenant.md)
    assert down.subscription.plan.code == "growth" and down.subscription.pending_plan_id == plans["starter"].id
    assert not down.HasField("invoice")
    await due(billing_db, tenant, end + timedelta(seconds=1))
    sub = await _sub(stubs, tenant)
    assert sub.plan.code == "starter" and not sub.pending_plan_id and sub.status == S.SUBSCRIPTION_STATUS_ACTIVE
    renewal = (await _invoices(stubs, tenant))[0]
    assert renewal.number == "INV-000003" and from_money(renewal.total) == Decimal(29)


async def test_cancel_at_period_end_then_pause_and_resume(stubs, tenant, other_tenant, billing_db):
    sub = await subscribed(stubs, tenant)
    await due(billing_db, tenant, _end(sub.trial_end_time) + timedelta(seconds=1))
    sub = (await stubs.subscriptions.CancelSubscription(spb.CancelSubscriptionRequest(), metadata=tenant.md)
           ).subscription
    assert sub.cancel_at_period_end and sub.status == S.SUBSCRIPTION_STATUS_ACTIVE
    await due(billing_db, tenant, _end(sub.current_period_end_time) + timedelta(seconds=1))
    assert (await _sub(stubs, tenant)).status == S.SUBSCRIPTION_STATUS_CANCELLED
    assert len(await _invoices(stubs, tenant)) == 1  # no renewal invoice

    sub = await subscribed(stubs, other_tenant)
    await due(billing_db, other_tenant, _end(sub.trial_end_time) + timedelta(seconds=1))
    paused = (await stubs.subscriptions.PauseSubscription(spb.PauseSubscriptionRequest(), metadata=other_tenant.md)
              ).subscription
    assert paused.status == S.SUBSCRIPTION_STATUS_PAUSED
    # a paused subscription is not renewed
    assert await due(billing_db, other_tenant, _end(paused.current_period_end_time) + timedelta(days=1)) == 0
    resumed = (await stubs.subscriptions.ResumeSubscription(spb.ResumeSubscriptionRequest(),
                                                            metadata=other_tenant.md)).subscription
    assert resumed.status == S.SUBSCRIPTION_STATUS_ACTIVE
    assert len(await _invoices(stubs, other_tenant)) == 1


async def test_two_schedulers_at_once_act_once(stubs, tenant, billing_db):
    import asyncio

    sub = await subscribed(stubs, tenant)
    at = _end(sub.trial_end_time) + timedelta(seconds=1)
    counts = await asyncio.gather(*(due(billing_db, tenant, at) for _ in range(4)))
    assert sum(counts) == 1
    assert len(await _invoices(stubs, tenant)) == 1
