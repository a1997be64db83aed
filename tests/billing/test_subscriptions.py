"""A new organization gets a trial; plans, plan changes with proration, cancel, pause, resume."""

from decimal import Decimal

import grpc
from givance.billing.v1 import plan_pb2, subscription_pb2
from givance.billing.v1 import plan_service_pb2 as ppb
from givance.billing.v1 import subscription_service_pb2 as spb

from chassis.convert import from_money
from tests.billing.conftest import subscribed
from tests.helpers import error_reason, fails


async def _plan(stubs, tenant, code):
    plans = (await stubs.plans.ListPlans(ppb.ListPlansRequest(), metadata=tenant.md)).plans
    return next(p for p in plans if p.code == code)


async def test_a_new_organization_starts_a_trial_on_the_starter_plan(stubs, tenant):
    sub = await subscribed(stubs, tenant)
    assert sub.status == subscription_pb2.SUBSCRIPTION_STATUS_TRIAL
    assert sub.plan.code == "starter" and sub.plan.trial_days == 14
    trial = sub.trial_end_time.ToDatetime() - sub.current_period_start_time.ToDatetime()
    assert trial.days == 14
    assert sub.organization_id == tenant.org_id


async def test_plans_are_listed_with_prices_and_entitlements(stubs, tenant):
    starter = await _plan(stubs, tenant, "starter")
    prices = {p.billing_cycle: from_money(p.amount) for p in starter.prices}
    assert prices == {plan_pb2.BILLING_CYCLE_MONTHLY: Decimal("29"), plan_pb2.BILLING_CYCLE_YEARLY: Decimal("290")}
    assert starter.entitlements.seats == 5 and starter.current
    got = (await stubs.plans.GetPlan(ppb.GetPlanRequest(id=starter.id), metadata=tenant.md)).plan
    assert got == starter


async def test_only_a_platform_operator_publishes_a_plan_version_and_subscribers_keep_theirs(stubs, tenant, operator):
    await subscribed(stubs, tenant)
    code = f"t{tenant.org_id[:8]}"
    plan = plan_pb2.Plan(code=code, name="Test plan", currency_code="USD", trial_days=0, tax_rate="0.2",
                         prices=[plan_pb2.Price(billing_cycle=plan_pb2.BILLING_CYCLE_MONTHLY,
                                                amount={"currency_code": "USD", "units": 10})],
                         entitlements=plan_pb2.Entitlements(seats=2, donors=5))
    err = await fails(stubs.plans.PublishPlan(ppb.PublishPlanRequest(plan=plan), metadata=tenant.md),
                      grpc.StatusCode.PERMISSION_DENIED)
    assert err
    v1 = (await stubs.plans.PublishPlan(ppb.PublishPlanRequest(plan=plan), metadata=operator.md)).plan
    assert v1.version == 1 and v1.tax_rate == "0.2"
    # the tenant moves to v1 (from a trial: at once, no invoice)
    changed = await stubs.subscriptions.ChangePlan(spb.ChangePlanRequest(plan_id=v1.id), metadata=tenant.md)
    assert changed.subscription.plan.id == v1.id and not changed.HasField("invoice")
    plan.prices[0].amount.units = 12
    v2 = (await stubs.plans.PublishPlan(ppb.PublishPlanRequest(plan=plan), metadata=operator.md)).plan
    assert v2.version == 2 and v2.id != v1.id
    sub = (await stubs.subscriptions.GetSubscription(spb.GetSubscriptionRequest(), metadata=tenant.md)).subscription
    assert sub.plan.id == v1.id and from_money(sub.plan.prices[0].amount) == Decimal(10)
    assert not sub.plan.current
    # an old version cannot be chosen any more
    await fails(stubs.subscriptions.ChangePlan(spb.ChangePlanRequest(plan_id=v1.id), metadata=tenant.md),
                grpc.StatusCode.INVALID_ARGUMENT)


async def test_bad_plan_input_names_the_fields(stubs, operator):
    bad = plan_pb2.Plan(code="Bad Code", name="", currency_code="usd", trial_days=400, tax_rate="1.5")
    err = await fails(stubs.plans.PublishPlan(ppb.PublishPlanRequest(plan=bad), metadata=operator.md),
                      grpc.StatusCode.INVALID_ARGUMENT)
    from tests.helpers import field_violations

    assert {"plan.code", "plan.name", "plan.currency_code", "plan.trial_days", "plan.tax_rate",
            "plan.prices"} <= set(field_violations(err))


async def test_cancel_pause_resume_and_stale_etags(stubs, tenant):
    sub = await subscribed(stubs, tenant)
    err = await fails(stubs.subscriptions.PauseSubscription(spb.PauseSubscriptionRequest(), metadata=tenant.md),
                      grpc.StatusCode.FAILED_PRECONDITION)  # a trial is not paused
    assert error_reason(err) == "INVALID_SUBSCRIPTION_STATE"
    await fails(stubs.subscriptions.CancelSubscription(spb.CancelSubscriptionRequest(etag='"stale"'),
                                                       metadata=tenant.md), grpc.StatusCode.ABORTED)
    done = (await stubs.subscriptions.CancelSubscription(spb.CancelSubscriptionRequest(etag=sub.etag),
                                                         metadata=tenant.md)).subscription
    assert done.status == subscription_pb2.SUBSCRIPTION_STATUS_CANCELLED and done.HasField("cancel_time")
