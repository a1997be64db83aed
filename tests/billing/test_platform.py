"""The platform's own revenue: an organization's invoice charged through the platform's Stripe
account (the official `stripe` library against a local server speaking Stripe's wire format),
and the platform's webhook (its own endpoint and secret) settling each payment once; never
confused with an organization's gifts."""

import uuid
from datetime import UTC, timedelta

import httpx
import pytest
from givance.billing.v1 import invoice_pb2, subscription_pb2
from givance.billing.v1 import invoice_service_pb2 as ipb
from givance.billing.v1 import subscription_service_pb2 as spb

from chassis.crypto import Keyring
from services.billing.api.webhooks import WebhookServer
from services.billing.domain.clock import Clock
from services.billing.handlers.platform import PlatformEvents
from services.billing.handlers.scheduler import Policy
from services.billing.providers.platform_stripe import StripeCharger
from services.billing.settings import DEV_ENCRYPTION_KEYS
from tests.billing.conftest import WHSEC, due, gateway_config, gift_event, signed, subscribed
from tests.billing.stripe_server import DECLINED, KEY, PROCESSING, VISA, FakeStripe

PLATFORM_WHSEC = "whsec_" + "platform0platform0platform0abcd"
S = subscription_pb2


@pytest.fixture
async def stripe_api():
    fake = FakeStripe()
    await fake.host.start()
    fake.charger = StripeCharger(KEY, api_base=fake.url)
    yield fake
    await fake.host.stop()


@pytest.fixture
async def platform_hook(billing_db):
    """billing's webhook host with the platform's endpoint configured (the session's host has none)."""
    server = WebhookServer(billing_db, Keyring(DEV_ENCRYPTION_KEYS), host="127.0.0.1", port=0, tolerance=300,
                           platform=PlatformEvents(billing_db, PLATFORM_WHSEC, 300, Policy(), Clock()))
    await server.run()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:

        async def post(event, secret=PLATFORM_WHSEC, path="/webhooks/platform/stripe"):
            body, headers = signed(event, secret)
            r = await http.post(path, content=body, headers=headers)
            return r.status_code, r.json().get("received") or r.json().get("error")

        yield post
    await server.stop()


async def _sub(stubs, tenant):
    return (await stubs.subscriptions.GetSubscription(spb.GetSubscriptionRequest(), metadata=tenant.md)).subscription


async def _invoices(stubs, tenant):
    return list((await stubs.invoices.ListInvoices(ipb.ListInvoicesRequest(), metadata=tenant.md)).invoices)


async def _trial_end(stubs, tenant):
    return (await subscribed(stubs, tenant)).trial_end_time.ToDatetime(tzinfo=UTC)


async def _outbox(admin_db, tenant, key):
    return await admin_db.fetchval("SELECT count(*) FROM billing.outbox WHERE tenant_id = $1 AND routing_key = $2",
                                   uuid.UUID(tenant.org_id), key)


async def test_an_invoice_is_charged_through_the_platforms_stripe_account_once(stubs, tenant, billing_db, admin_db,
                                                                                stripe_api, platform_hook):
    stripe_api.cards[tenant.org_id] = VISA
    end = await _trial_end(stubs, tenant)
    assert await due(billing_db, tenant, end + timedelta(seconds=1), charger=stripe_api.charger) == 1
    sub = await _sub(stubs, tenant)
    (inv,) = await _invoices(stubs, tenant)
    assert sub.status == S.SUBSCRIPTION_STATUS_ACTIVE and inv.status == invoice_pb2.INVOICE_STATUS_PAID
    (customer,) = stripe_api.customers.values()
    assert customer["metadata"] == {"organization_id": tenant.org_id}
    (pi,) = stripe_api.intents.values()
    assert (pi["amount"], pi["currency"], pi["customer"], pi["payment_method"]) == (2900, "usd", customer["id"], VISA)
    assert pi["metadata"] == {"kind": "platform_invoice", "organization_id": tenant.org_id, "invoice_id": inv.id}
    charge = next(r for r in stripe_api.requests if r["path"] == "/v1/payment_intents")
    assert charge["idempotency_key"] == f"givance-invoice-{inv.id}-1"
    assert charge["params"]["confirm"] == "true" and charge["params"]["off_session"] == "true"
    # Stripe's event about the same payment, and its retry: the invoice was paid once
    event = stripe_api.event(pi["id"])
    assert await platform_hook(event) == (200, "invoice paid already")
    assert await platform_hook(event) == (200, "replayed: nothing done")
    assert await _outbox(admin_db, tenant, "billing.invoice.paid") == 1
    row = await admin_db.fetchrow("SELECT status, attempt FROM billing.platform_charges WHERE payment_id = $1",
                                  pi["id"])
    assert dict(row) == {"status": "succeeded", "attempt": 1}


async def test_a_declined_renewal_is_dunned_and_a_late_payment_event_recovers_it(stubs, tenant, billing_db, admin_db,
                                                                                  stripe_api, platform_hook):
    stripe_api.cards[tenant.org_id] = DECLINED
    end = await _trial_end(stubs, tenant)
    await due(billing_db, tenant, end + timedelta(seconds=1), charger=stripe_api.charger)
    sub = await _sub(stubs, tenant)
    assert sub.status == S.SUBSCRIPTION_STATUS_PAST_DUE and sub.payment_attempts == 1
    (declined,) = stripe_api.intents.values()
    # the decline's own event does not count the failure twice
    assert await platform_hook(stripe_api.event(declined["id"], "payment_intent.payment_failed")) == (
        200, "charge failed already")
    assert (await _sub(stubs, tenant)).payment_attempts == 1
    # the retry on day 1 with a new card that settles later (e.g. a bank debit): still past due, no further retry
    (customer,) = stripe_api.customers.values()
    customer["invoice_settings"]["default_payment_method"] = PROCESSING
    assert await due(billing_db, tenant, end + timedelta(days=1, seconds=1), charger=stripe_api.charger) == 1
    assert (await _sub(stubs, tenant)).status == S.SUBSCRIPTION_STATUS_PAST_DUE
    retry = next(p for p in stripe_api.intents.values() if p["payment_method"] == PROCESSING)
    assert stripe_api.requests[-1]["idempotency_key"].endswith("-2")
    status, detail = await platform_hook(stripe_api.event(retry["id"]))
    assert (status, detail) == (200, "invoice paid; subscription recovered")
    sub = await _sub(stubs, tenant)
    assert sub.status == S.SUBSCRIPTION_STATUS_ACTIVE and sub.payment_attempts == 0
    assert [i.status for i in await _invoices(stubs, tenant)] == [invoice_pb2.INVOICE_STATUS_PAID]
    assert await due(billing_db, tenant, end + timedelta(days=6), charger=stripe_api.charger) == 0  # no retry left
    assert await _outbox(admin_db, tenant, "billing.subscription.recovered") == 1
    assert await _outbox(admin_db, tenant, "billing.invoice.payment_failed") == 1


async def test_a_charge_still_processing_that_fails_later_enters_dunning_once(stubs, tenant, billing_db, admin_db,
                                                                               stripe_api, platform_hook):
    stripe_api.cards[tenant.org_id] = PROCESSING
    end = await _trial_end(stubs, tenant)
    await due(billing_db, tenant, end + timedelta(seconds=1), charger=stripe_api.charger)
    assert (await _sub(stubs, tenant)).status == S.SUBSCRIPTION_STATUS_ACTIVE  # collected, not settled
    (pi,) = stripe_api.intents.values()
    failed = stripe_api.event(pi["id"], "payment_intent.payment_failed")
    assert await platform_hook(failed) == (200, "payment_failed")
    assert await platform_hook(failed) == (200, "replayed: nothing done")
    sub = await _sub(stubs, tenant)
    assert sub.status == S.SUBSCRIPTION_STATUS_PAST_DUE and sub.payment_attempts == 1
    (inv,) = await _invoices(stubs, tenant)
    assert inv.status == invoice_pb2.INVOICE_STATUS_OPEN
    retries = await admin_db.fetch("SELECT kind, due_at FROM billing.due_actions WHERE tenant_id = $1 AND "
                                   "done_at IS NULL ORDER BY due_at", uuid.UUID(tenant.org_id))
    assert [r["kind"] for r in retries] == ["dunning_retry", "renew"]
    assert retries[0]["due_at"] == end + timedelta(days=1)
    assert await _outbox(admin_db, tenant, "billing.subscription.past_due") == 1


async def test_the_two_money_flows_never_mix(stubs, tenant, other_tenant, billing_db, admin_db, stripe_api,
                                             platform_hook):
    org = uuid.UUID(tenant.org_id)
    stripe_api.cards[tenant.org_id] = PROCESSING
    await due(billing_db, tenant, await _trial_end(stubs, tenant) + timedelta(seconds=1), charger=stripe_api.charger)
    (pi,) = stripe_api.intents.values()
    platform_event = stripe_api.event(pi["id"])
    cfg = await gateway_config(stubs, tenant)
    org_path = f"/webhooks/stripe/{tenant.org_id}/{cfg.id}"
    gift = gift_event(f"evt_{uuid.uuid4().hex[:24]}", f"pi_{uuid.uuid4().hex[:24]}", 5000, "gift@example.org")

    # a donor's gift on the platform's endpoint, signed with the platform's secret: ignored, nothing stored
    status, detail = await platform_hook(gift)
    assert status == 200 and "ignored" in detail
    # each endpoint verifies only with its own secret
    assert (await platform_hook(gift, secret=WHSEC))[0] == 400
    assert (await platform_hook(platform_event, secret=WHSEC, path=org_path))[0] == 200  # the org's own secret
    assert (await platform_hook(gift, path=org_path))[0] == 400  # the platform's secret on the org's endpoint
    # the platform's payment sent to the organization's endpoint is stored there, and pays nothing
    (inv,) = await _invoices(stubs, tenant)
    assert inv.status == invoice_pb2.INVOICE_STATUS_OPEN
    assert await admin_db.fetchval("SELECT status FROM billing.webhook_events WHERE event_id = $1",
                                   platform_event["id"]) == "ignored"
    assert await admin_db.fetchval("SELECT count(*) FROM billing.platform_events WHERE organization_id = $1",
                                   org) == 0
    assert await _outbox(admin_db, tenant, "billing.payment.succeeded") == 0
    # another organization's name in the metadata reaches nothing of this one's (its RLS hides the invoice)
    forged = stripe_api.event(pi["id"])
    forged["data"]["object"]["metadata"]["organization_id"] = other_tenant.org_id
    assert await platform_hook(forged) == (200, "unknown invoice: stored")
    # the platform's own event, on its endpoint: paid once
    assert await platform_hook(platform_event) == (200, "invoice paid")
    assert (await _invoices(stubs, tenant))[0].status == invoice_pb2.INVOICE_STATUS_PAID
    assert await admin_db.fetchval("SELECT count(*) FROM billing.payments WHERE organization_id = $1", org) == 0
