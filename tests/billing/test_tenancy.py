"""Another organization's billing data is never visible or changeable, through every RPC, the
webhook endpoint, or SQL."""

import uuid
from datetime import UTC, timedelta

import asyncpg
import grpc
import httpx
from givance.billing.v1 import (
    gateway_config_service_pb2,
    invoice_service_pb2,
    payment_method_service_pb2,
    payment_method_service_pb2_grpc,
    plan_service_pb2,
    subscription_pb2,
    subscription_service_pb2,
    usage_service_pb2,
)
from givance.billing.v1 import gateway_config_service_pb2 as gpb
from givance.billing.v1 import invoice_service_pb2 as ipb
from givance.billing.v1 import plan_service_pb2 as ppb
from givance.billing.v1 import subscription_service_pb2 as spb
from givance.billing.v1 import usage_service_pb2 as upb

from chassis.settings import ServiceSettings, plain_dsn
from tests.billing.conftest import WHSEC, due, gateway_config, gift_event, signed, subscribed
from tests.helpers import fails

SERVICES = (gateway_config_service_pb2, invoice_service_pb2, payment_method_service_pb2, plan_service_pb2,
            subscription_service_pb2, usage_service_pb2)


async def test_every_rpc_keeps_to_the_callers_organization(stubs, tenant, other_tenant, operator, billing_db,
                                                           webhook_port):
    covered: set[str] = set()

    def call(name):
        covered.add(name)

    a_sub = await subscribed(stubs, tenant)
    b_sub = await subscribed(stubs, other_tenant)
    # A's trial ends: its first invoice
    await due(billing_db, tenant, a_sub.trial_end_time.ToDatetime(tzinfo=UTC) + timedelta(seconds=1))
    (a_inv,) = (await stubs.invoices.ListInvoices(ipb.ListInvoicesRequest(), metadata=tenant.md)).invoices
    a_cfg = await gateway_config(stubs, tenant)

    # reads: B sees only B
    call("GetSubscription")
    got = (await stubs.subscriptions.GetSubscription(spb.GetSubscriptionRequest(), metadata=other_tenant.md))
    assert got.subscription.organization_id == other_tenant.org_id and got.subscription.id == b_sub.id
    call("ListInvoices")
    assert not (await stubs.invoices.ListInvoices(ipb.ListInvoicesRequest(), metadata=other_tenant.md)).invoices
    for name, rpc in (("GetInvoice", stubs.invoices.GetInvoice(ipb.GetInvoiceRequest(id=a_inv.id),
                                                               metadata=other_tenant.md)),
                      ("GetInvoicePdf", stubs.invoices.GetInvoicePdf(ipb.GetInvoicePdfRequest(id=a_inv.id),
                                                                     metadata=other_tenant.md)),
                      ("GetGatewayConfig", stubs.gateway_configs.GetGatewayConfig(
                          gpb.GetGatewayConfigRequest(id=a_cfg.id), metadata=other_tenant.md)),
                      ("DeleteGatewayConfig", stubs.gateway_configs.DeleteGatewayConfig(
                          gpb.DeleteGatewayConfigRequest(id=a_cfg.id), metadata=other_tenant.md)),
                      # the operator's token is for its own organization: A's invoice is not there
                      ("CreateCreditNote", stubs.invoices.CreateCreditNote(ipb.CreateCreditNoteRequest(
                          invoice_id=a_inv.id, amount={"currency_code": "USD", "units": 1}, reason="x"),
                          metadata=operator.md)),
                      ("VoidInvoice", stubs.invoices.VoidInvoice(ipb.VoidInvoiceRequest(id=a_inv.id),
                                                                 metadata=operator.md))):
        call(name)
        await fails(rpc, grpc.StatusCode.NOT_FOUND)
    call("ListGatewayConfigs")
    assert not (await stubs.gateway_configs.ListGatewayConfigs(gpb.ListGatewayConfigsRequest(),
                                                               metadata=other_tenant.md)).gateway_configs
    call("GetUsage")
    await stubs.usage.GetUsage(upb.GetUsageRequest(), metadata=other_tenant.md)
    call("GetEntitlements")
    assert (await stubs.usage.GetEntitlements(upb.GetEntitlementsRequest(), metadata=other_tenant.md)).plan_code

    # writes by B change only B
    plans = (await stubs.plans.ListPlans(ppb.ListPlansRequest(), metadata=other_tenant.md)).plans
    call("ListPlans")
    growth = next(p for p in plans if p.code == "growth")
    call("GetPlan")
    await stubs.plans.GetPlan(ppb.GetPlanRequest(id=growth.id), metadata=other_tenant.md)
    for name in ("ChangePlan", "CancelSubscription", "PauseSubscription", "ResumeSubscription", "ApplyCoupon"):
        call(name)
    await stubs.subscriptions.ChangePlan(spb.ChangePlanRequest(plan_id=growth.id), metadata=other_tenant.md)
    await fails(stubs.subscriptions.PauseSubscription(spb.PauseSubscriptionRequest(), metadata=other_tenant.md),
                grpc.StatusCode.FAILED_PRECONDITION)  # B is in its trial: not paused, and A is untouched
    await fails(stubs.subscriptions.ResumeSubscription(spb.ResumeSubscriptionRequest(), metadata=other_tenant.md),
                grpc.StatusCode.FAILED_PRECONDITION)
    await fails(stubs.subscriptions.ApplyCoupon(spb.ApplyCouponRequest(code="NO-SUCH"), metadata=other_tenant.md),
                grpc.StatusCode.INVALID_ARGUMENT)
    await stubs.subscriptions.CancelSubscription(spb.CancelSubscriptionRequest(immediately=True),
                                                 metadata=other_tenant.md)
    mine = (await stubs.subscriptions.GetSubscription(spb.GetSubscriptionRequest(), metadata=tenant.md)).subscription
    assert mine.status == subscription_pb2.SUBSCRIPTION_STATUS_ACTIVE and mine.plan.code == "starter"
    assert (await stubs.gateway_configs.GetGatewayConfig(gpb.GetGatewayConfigRequest(id=a_cfg.id),
                                                         metadata=tenant.md)).gateway_config.active
    # creating is per organization: B's own config, next to A's
    call("CreateGatewayConfig")
    b_cfg = await gateway_config(stubs, other_tenant, webhook_secret=WHSEC + "B")
    # platform writes exist (plans, coupons) but are not tenant data: tests/billing/test_subscriptions.py
    call("PublishPlan")
    call("CreateCoupon")

    # the saved card: B's own only (A's card and the platform's Stripe account: tests/billing/test_payment_methods.py)
    cards = payment_method_service_pb2_grpc.PaymentMethodServiceStub(stubs.billing_channel)
    call("GetPaymentMethod")
    assert not (await cards.GetPaymentMethod(payment_method_service_pb2.GetPaymentMethodRequest(),
                                             metadata=other_tenant.md)).HasField("payment_method")
    call("DeletePaymentMethod")
    await fails(cards.DeletePaymentMethod(payment_method_service_pb2.DeletePaymentMethodRequest(),
                                          metadata=other_tenant.md), grpc.StatusCode.NOT_FOUND)
    call("SetupPaymentMethod")  # the session's billing has no platform Stripe account
    await fails(cards.SetupPaymentMethod(payment_method_service_pb2.SetupPaymentMethodRequest(),
                                         metadata=other_tenant.md), grpc.StatusCode.FAILED_PRECONDITION)

    # the webhook: A's config under B's organization is not found; B's endpoint refuses A's secret
    url = f"http://127.0.0.1:{webhook_port}"
    body, headers = signed(gift_event(f"evt_{uuid.uuid4().hex}", f"pi_{uuid.uuid4().hex}", 500, "x@example.org"),
                           WHSEC)
    async with httpx.AsyncClient(base_url=url) as http:
        r = await http.post(f"/webhooks/stripe/{other_tenant.org_id}/{a_cfg.id}", content=body, headers=headers)
        assert r.status_code == 404
        r = await http.post(f"/webhooks/stripe/{other_tenant.org_id}/{b_cfg.id}", content=body, headers=headers)
        assert r.status_code == 400 and "signature" in r.json()["error"]

    methods = {m.name for mod in SERVICES for s in mod.DESCRIPTOR.services_by_name.values() for m in s.methods}
    assert covered == methods, methods - covered


async def test_the_tenant_header_must_be_the_tokens(stubs, tenant, other_tenant):
    md = (("authorization", f"Bearer {tenant.access_token}"), ("x-tenant-id", other_tenant.org_id))
    await fails(stubs.subscriptions.GetSubscription(spb.GetSubscriptionRequest(), metadata=md),
                grpc.StatusCode.PERMISSION_DENIED)


async def test_raw_sql_as_billing_sees_only_its_tenant(stubs, tenant, other_tenant):
    await subscribed(stubs, tenant)
    await subscribed(stubs, other_tenant)
    await gateway_config(stubs, tenant)
    conn = await asyncpg.connect(plain_dsn(ServiceSettings().app_database_url("billing")))
    try:
        for table in ("billing.subscriptions", "billing.gateway_configs", "billing.invoices", "billing.usage_counters",
                      "billing.platform_customers"):
            async with conn.transaction():
                await conn.execute("SELECT set_config('app.tenant_id', $1, true)", other_tenant.org_id)
                orgs = {str(r[0]) for r in await conn.fetch(f"SELECT DISTINCT organization_id FROM {table}")}
            assert orgs <= {other_tenant.org_id}, table
        async with conn.transaction():
            assert await conn.fetchval("SELECT count(*) FROM billing.subscriptions") == 0
    finally:
        await conn.close()
