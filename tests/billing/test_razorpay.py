"""Razorpay as a second gift gateway: its key pair sealed, its webhooks verified the Razorpay way
(X-Razorpay-Signature, the hex HMAC-SHA256 of the body with the webhook's secret, by the official
library), stored once by X-Razorpay-Event-Id; payment.captured a gift in crm once,
refund.processed its refund, even when the refund comes first."""

import json
import uuid

import grpc
import httpx
import pytest
from givance.billing.v1 import gateway_config_pb2
from givance.billing.v1 import gateway_config_service_pb2 as gpb
from givance.crm.v1 import donation_pb2
from givance.crm.v1 import donation_service_pb2 as dopb
from google.protobuf import json_format

from chassis.convert import from_money
from services.billing.providers.razorpay_gateway import sign
from tests.billing.conftest import WHSEC, gateway_config
from tests.helpers import eventually, fails, field_violations

KEY_ID, KEY_SECRET, SECRET = "rzp_test_" + "AbCdEf1234GhIj", "Zx9" + "Yw8Vu7Ts6Rq5Po4Nm3Lk2", "harbor-shelter-hook-1"


def payment(pay_id: str, paise: int, email: str, name: str = "Asha Rao") -> dict:
    return {"entity": "event", "account_id": "acc_Bench0000000001", "event": "payment.captured",
            "contains": ["payment"], "created_at": 1764547200, "payload": {"payment": {"entity": {
                "id": pay_id, "entity": "payment", "amount": paise, "currency": "INR", "status": "captured",
                "method": "upi", "email": email, "contact": "+919000000000", "created_at": 1764547100,
                "notes": {"kind": "donation", "donor_name": name}}}}}


def refund(pay_id: str, refund_id: str, paise: int) -> dict:
    return {"entity": "event", "account_id": "acc_Bench0000000001", "event": "refund.processed",
            "contains": ["refund", "payment"], "created_at": 1764550800, "payload": {"refund": {"entity": {
                "id": refund_id, "entity": "refund", "amount": paise, "currency": "INR", "payment_id": pay_id,
                "status": "processed", "created_at": 1764550700}}}}


@pytest.fixture
async def rzp(stubs, tenant, webhook_port):
    cfg = (await stubs.gateway_configs.CreateGatewayConfig(gpb.CreateGatewayConfigRequest(
        gateway_config=gateway_config_pb2.GatewayConfig(gateway=gateway_config_pb2.GATEWAY_RAZORPAY, key_id=KEY_ID,
                                                        secret_key=KEY_SECRET, webhook_secret=SECRET)),
        metadata=tenant.md)).gateway_config
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{webhook_port}") as http:

        async def post(event, secret=SECRET, event_id=None, body=None, path=None):
            raw = json.dumps(event).encode()
            headers = {"X-Razorpay-Signature": sign(raw, secret), "Content-Type": "application/json",
                       "X-Razorpay-Event-Id": event_id or f"evt_{uuid.uuid4().hex[:14]}"}
            r = await http.post(path or cfg.webhook_path, content=body or raw, headers=headers)
            return r.status_code, r.json().get("received") or r.json().get("error")

        post.config = cfg
        yield post


async def _donations(stubs, tenant):
    return list((await stubs.donations.ListDonations(dopb.ListDonationsRequest(), metadata=tenant.md)).donations)


async def test_a_razorpay_config_is_sealed_and_shows_only_its_key_ids_hint(rzp, stubs, tenant, admin_db):
    cfg = rzp.config
    assert cfg.gateway == gateway_config_pb2.GATEWAY_RAZORPAY and cfg.secret_key_hint == "rzp_test_…GhIj"
    assert cfg.test_mode and cfg.webhook_path == f"/webhooks/razorpay/{tenant.org_id}/{cfg.id}" and not cfg.key_id
    text = json_format.MessageToJson(cfg)
    assert KEY_SECRET not in text and SECRET not in text
    row = dict(await admin_db.fetchrow("SELECT * FROM billing.gateway_configs WHERE id = $1", uuid.UUID(cfg.id)))
    assert KEY_SECRET not in repr(row) and SECRET not in repr(row) and KEY_ID not in repr(row)
    # one per gateway: a Stripe config beside it is fine, a second Razorpay one is not
    assert (await gateway_config(stubs, tenant)).gateway == gateway_config_pb2.GATEWAY_STRIPE
    await fails(stubs.gateway_configs.CreateGatewayConfig(gpb.CreateGatewayConfigRequest(
        gateway_config=gateway_config_pb2.GatewayConfig(gateway=gateway_config_pb2.GATEWAY_RAZORPAY, key_id=KEY_ID,
                                                        secret_key=KEY_SECRET, webhook_secret=SECRET)),
        metadata=tenant.md), grpc.StatusCode.ALREADY_EXISTS)
    err = await fails(stubs.gateway_configs.CreateGatewayConfig(gpb.CreateGatewayConfigRequest(
        gateway_config=gateway_config_pb2.GatewayConfig(gateway=gateway_config_pb2.GATEWAY_RAZORPAY, key_id="sk_x",
                                                        secret_key="short", webhook_secret="")),
        metadata=tenant.md), grpc.StatusCode.INVALID_ARGUMENT)
    assert {"gateway_config.key_id", "gateway_config.secret_key",
            "gateway_config.webhook_secret"} <= set(field_violations(err))


async def test_signatures_are_verified_the_razorpay_way_and_each_endpoint_keeps_to_its_gateway(rzp, stubs, tenant):
    event = payment(f"pay_{uuid.uuid4().hex[:14]}", 10000, "sig@example.org")
    raw = json.dumps(event).encode()
    assert (await rzp(event, body=raw.replace(b"10000", b"90000")))[0] == 400  # changed after signing
    assert (await rzp(event, secret="another-secret"))[0] == 400
    stripe_cfg = await gateway_config(stubs, tenant, WHSEC)
    # a Razorpay event at the Stripe config's id on the Razorpay route, and the Razorpay config's id on Stripe's
    assert (await rzp(event, path=f"/webhooks/razorpay/{tenant.org_id}/{stripe_cfg.id}"))[0] == 404
    assert (await rzp(event, path=f"/webhooks/razorpay/{uuid.uuid4()}/{rzp.config.id}"))[0] == 404  # another org
    assert (await rzp(event, event_id="evt_same00000001")) == (200, "payment recorded")
    assert (await rzp(event, event_id="evt_same00000001")) == (200, "replayed: nothing done")


async def test_a_razorpay_gift_and_its_early_refund_arrive_once_in_crm(rzp, stubs, tenant):
    pay_id = f"pay_{uuid.uuid4().hex[:14]}"
    early = await rzp(refund(pay_id, f"rfnd_{uuid.uuid4().hex[:14]}", 2500))
    assert early == (200, "refund waits for its payment")
    captured = payment(pay_id, 10000, "Asha@Example.org")
    for _ in range(2):  # Razorpay retries with the same event id
        assert (await rzp(captured, event_id="evt_pay0000000001"))[0] == 200

    async def settled():
        gifts = await _donations(stubs, tenant)
        return gifts if gifts and from_money(gifts[0].refunded_amount) == 25 else None

    (g,) = await eventually(settled, what="the Razorpay gift and its refund in crm")
    assert from_money(g.amount) == 100 and g.amount.currency_code == "INR" and g.reference_number == pay_id
    assert g.payment_method == donation_pb2.PAYMENT_METHOD_CREDIT_CARD
