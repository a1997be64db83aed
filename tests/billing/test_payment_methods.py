"""The card the platform charges for an organization's subscription, saved Stripe Billing's way:
SetupPaymentMethod makes a SetupIntent on the platform's Stripe account for the organization's
customer; Stripe.js confirms it (the local Stripe server's `confirm`); the platform's webhook
`setup_intent.succeeded` saves the card (masked) as the default, which renewals charge. Through a
billing host built like the session's, but with the platform's Stripe account configured (the
official `stripe` library against the local server speaking Stripe's wire format)."""

import uuid
from datetime import UTC, timedelta

import grpc
import httpx
import pytest
from givance.billing.v1 import invoice_pb2, payment_method_service_pb2_grpc
from givance.billing.v1 import invoice_service_pb2 as ipb
from givance.billing.v1 import payment_method_service_pb2 as pb

from chassis.spec import load
from services.billing.api.webhooks import WebhookServer
from tests.billing.conftest import due, signed, subscribed
from tests.billing.stripe_server import KEY, MASTERCARD, VISA, FakeStripe
from tests.helpers import eventually, fails, invalid

PLATFORM_WHSEC = "whsec_" + "cards0cards0cards0cards0cards0ab"
PUBLISHABLE = "pk_test_" + "cards0cards0cards0"


@pytest.fixture(scope="module")
async def platform(hosts):
    """A billing host with the platform's Stripe account (a local server), its stubs and its webhook."""
    fake = FakeStripe()
    await fake.host.start()
    spec = load("billing")
    host = await spec.build(spec.settings(
        port=0, grace_seconds=1, identity_address=f"127.0.0.1:{hosts['identity'].bound_port}", webhook_port=0,
        platform_stripe_secret_key=KEY, platform_stripe_api_base=fake.url,
        platform_stripe_webhook_secret=PLATFORM_WHSEC, platform_stripe_publishable_key=PUBLISHABLE,
        scheduler_poll_seconds=3600))
    await host.start()
    (hook,) = [w for w in host.workers if isinstance(w, WebhookServer)]
    port = await eventually(lambda: hook.port, what="the webhook host to listen")
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{host.bound_port}")
    fake.stub = payment_method_service_pb2_grpc.PaymentMethodServiceStub(channel)
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}")

    async def post(event, secret=PLATFORM_WHSEC):
        body, headers = signed(event, secret)
        r = await http.post("/webhooks/platform/stripe", content=body, headers=headers)
        return r.status_code, r.json().get("received") or r.json().get("error")

    fake.post = post
    yield fake
    await http.aclose()
    await channel.close()
    await host.stop()
    await fake.host.stop()


async def _card(platform, tenant):
    resp = await platform.stub.GetPaymentMethod(pb.GetPaymentMethodRequest(), metadata=tenant.md)
    return resp.payment_method if resp.HasField("payment_method") else None


async def _setup(platform, tenant, request_id=""):
    return await platform.stub.SetupPaymentMethod(pb.SetupPaymentMethodRequest(request_id=request_id),
                                                  metadata=tenant.md)


async def test_a_card_saved_by_a_setup_intent_is_what_the_renewal_charges(platform, stubs, tenant, billing_db,
                                                                          admin_db):
    org = uuid.UUID(tenant.org_id)
    assert await _card(platform, tenant) is None
    first = await _setup(platform, tenant, "card-1")
    assert first.client_secret.startswith(first.setup_intent_id + "_secret_")
    assert first.customer_id.startswith("cus_") and first.publishable_key == PUBLISHABLE
    again = await _setup(platform, tenant, "card-1")  # a retried request: the same SetupIntent
    assert (again.setup_intent_id, again.customer_id) == (first.setup_intent_id, first.customer_id)
    (customer,) = [c for c in platform.customers.values() if c["metadata"].get("organization_id") == tenant.org_id]
    assert customer["id"] == first.customer_id
    seti = platform.setup_intents[first.setup_intent_id]
    assert seti["usage"] == "off_session" and seti["customer"] == first.customer_id
    assert seti["metadata"] == {"kind": "platform_payment_method", "organization_id": tenant.org_id}

    # Stripe.js confirms it with a card; Stripe tells the platform's webhook (and retries it)
    event = platform.confirm(first.setup_intent_id, VISA)
    assert await platform.post(event) == (200, "card saved")
    assert await platform.post(event) == (200, "replayed: nothing done")
    card = await _card(platform, tenant)
    assert (card.brand, card.last4, card.exp_month, card.exp_year) == ("visa", "4242", 12, 2034)
    assert card.id == seti["payment_method"] and card.customer_id == first.customer_id
    row = await admin_db.fetchrow("SELECT * FROM billing.platform_customers WHERE organization_id = $1", org)
    assert row["setup_intent_id"] == first.setup_intent_id
    assert "4242424242424242" not in str(dict(row)) and first.client_secret not in str(dict(row))

    # the trial ends: the saved card is charged (the customer at Stripe names no default of its own)
    sub = await subscribed(stubs, tenant)
    assert customer["invoice_settings"]["default_payment_method"] is None
    from services.billing.providers.platform_stripe import StripeCharger

    charger = StripeCharger(KEY, api_base=platform.url)
    assert await due(billing_db, tenant, sub.trial_end_time.ToDatetime(tzinfo=UTC) + timedelta(seconds=1),
                     charger=charger) == 1
    (inv,) = (await stubs.invoices.ListInvoices(ipb.ListInvoicesRequest(), metadata=tenant.md)).invoices
    assert inv.status == invoice_pb2.INVOICE_STATUS_PAID
    (pi,) = [p for p in platform.intents.values() if p["metadata"].get("organization_id") == tenant.org_id]
    assert (pi["customer"], pi["payment_method"]) == (first.customer_id, card.id)


async def test_a_new_card_replaces_the_old_one_which_is_detached_and_removing_it_detaches_it(platform, tenant):
    old_setup, new_setup = await _setup(platform, tenant), await _setup(platform, tenant)
    assert old_setup.setup_intent_id != new_setup.setup_intent_id  # no request id: a new SetupIntent each time
    assert old_setup.customer_id == new_setup.customer_id  # one customer per organization
    older = platform.confirm(old_setup.setup_intent_id, VISA)
    platform.setup_intents[old_setup.setup_intent_id]["created"] -= 60
    older["data"]["object"]["created"] -= 60
    newer = platform.confirm(new_setup.setup_intent_id, MASTERCARD, expand=True)  # the card in the event itself
    assert await platform.post(older) == (200, "card saved")
    assert await platform.post(newer) == (200, "card saved; replaced the previous one")
    card = await _card(platform, tenant)
    assert (card.brand, card.last4) == ("mastercard", "4444")
    assert older["data"]["object"]["payment_method"] in platform.detached
    # an older SetupIntent's event that arrives late changes nothing
    late = platform.confirm(old_setup.setup_intent_id, VISA)
    late["data"]["object"]["created"] -= 60
    assert await platform.post(late) == (200, "a newer card is saved already: stored")
    assert (await _card(platform, tenant)).brand == "mastercard"

    await fails(platform.stub.DeletePaymentMethod(pb.DeletePaymentMethodRequest(etag='W/"1"'), metadata=tenant.md),
                grpc.StatusCode.ABORTED)
    removed = (await platform.stub.DeletePaymentMethod(pb.DeletePaymentMethodRequest(etag=card.etag),
                                                       metadata=tenant.md)).payment_method
    assert removed.id == card.id and card.id in platform.detached
    assert await _card(platform, tenant) is None
    await fails(platform.stub.DeletePaymentMethod(pb.DeletePaymentMethodRequest(), metadata=tenant.md),
                grpc.StatusCode.NOT_FOUND)


async def test_bad_input_and_another_organizations_card(platform, stubs, tenant, other_tenant, admin_db):
    await invalid(platform.stub.SetupPaymentMethod(pb.SetupPaymentMethodRequest(request_id="r" * 101),
                                                   metadata=tenant.md), "request_id")
    assert not [c for c in platform.customers.values() if c["metadata"].get("organization_id") == tenant.org_id]
    assert await admin_db.fetchval("SELECT count(*) FROM billing.platform_customers WHERE organization_id = $1",
                                   uuid.UUID(tenant.org_id)) == 0

    a = await _setup(platform, tenant)
    event = platform.confirm(a.setup_intent_id, VISA)
    # the event's organization must be the one whose customer made the SetupIntent
    forged = platform.confirm(a.setup_intent_id, VISA)
    forged["data"]["object"]["metadata"]["organization_id"] = other_tenant.org_id
    assert await platform.post(forged) == (200, "not the organization's customer: stored")
    assert await platform.post(event, secret=PLATFORM_WHSEC + "x") == (
        400, "signature: No signatures found matching the expected signature for payload")
    assert await platform.post(event) == (200, "card saved")
    # B sees no card, removes nothing of A's
    assert await _card(platform, other_tenant) is None
    await fails(platform.stub.DeletePaymentMethod(pb.DeletePaymentMethodRequest(), metadata=other_tenant.md),
                grpc.StatusCode.NOT_FOUND)
    assert (await _card(platform, tenant)).last4 == "4242"
    # B's own SetupIntent is for B's own customer
    b = await _setup(platform, other_tenant)
    assert b.customer_id != a.customer_id
    # a SetupIntent event without a payment method, or not the platform's, is not a card
    bare = platform.confirm(b.setup_intent_id, VISA)
    bare["data"]["object"]["payment_method"] = None
    status, detail = await platform.post(bare)
    assert status == 200 and "ignored" in detail
    assert await _card(platform, other_tenant) is None


async def test_without_the_platforms_stripe_account_no_card_can_be_saved(stubs, tenant):
    stub = payment_method_service_pb2_grpc.PaymentMethodServiceStub(stubs.billing_channel)
    await fails(stub.SetupPaymentMethod(pb.SetupPaymentMethodRequest(), metadata=tenant.md),
                grpc.StatusCode.FAILED_PRECONDITION)
    assert not (await stub.GetPaymentMethod(pb.GetPaymentMethodRequest(), metadata=tenant.md)).HasField(
        "payment_method")
