"""Stripe webhooks, verified the way Stripe signs them, stored once, turned into crm donations
once through the outbox; gateway credentials sealed and never returned."""

import time
import uuid

import asyncpg
import grpc
import httpx
import pytest
from givance.billing.v1 import gateway_config_pb2
from givance.billing.v1 import gateway_config_service_pb2 as gpb
from givance.crm.v1 import donation_pb2, project_pb2
from givance.crm.v1 import donation_service_pb2 as dopb
from givance.crm.v1 import project_service_pb2 as prpb
from google.protobuf import json_format

from chassis.convert import from_money
from tests.billing.conftest import SK, WHSEC, gateway_config, gift_event, refund_event, signed
from tests.helpers import eventually, fails, field_violations, new_donor


@pytest.fixture
async def hook(stubs, tenant, webhook_port):
    cfg = await gateway_config(stubs, tenant)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{webhook_port}") as http:

        async def post(payload, secret=WHSEC, timestamp=None, body=None, path=None):
            raw, headers = signed(payload, secret, timestamp)
            return await http.post(path or f"/webhooks/stripe/{tenant.org_id}/{cfg.id}", content=body or raw,
                                   headers=headers)

        post.config = cfg
        yield post


def _ids():
    return f"evt_{uuid.uuid4().hex[:24]}", f"pi_{uuid.uuid4().hex[:24]}"


async def _donations(stubs, tenant):
    return list((await stubs.donations.ListDonations(dopb.ListDonationsRequest(), metadata=tenant.md)).donations)


async def test_signatures_are_verified_the_stripe_way(hook, admin_db, tenant):
    event_id, pi = _ids()
    event = gift_event(event_id, pi, 2500, "sig@example.org")
    raw, _ = signed(event, WHSEC)
    tampered = raw.replace(b"2500", b"9500")
    r = await hook(event, body=tampered)  # the body was changed after signing
    assert r.status_code == 400
    assert (await hook(event, secret="whsec_" + "Z" * 32)).status_code == 400  # another endpoint's secret
    assert (await hook(event, timestamp=int(time.time()) - 301)).status_code == 400  # outside the 300 s tolerance
    assert (await hook(event, timestamp=int(time.time()) - 290)).status_code == 200
    replay = await hook(event)  # the same event id again
    assert replay.status_code == 200 and "replayed" in replay.json()["received"]
    org = uuid.UUID(tenant.org_id)
    assert await admin_db.fetchval("SELECT count(*) FROM billing.webhook_events WHERE organization_id = $1", org) == 1
    assert await admin_db.fetchval("SELECT count(*) FROM billing.outbox WHERE tenant_id = $1 AND "
                                   "routing_key = 'billing.payment.succeeded'", org) == 1
    assert (await hook(event, path=f"/webhooks/stripe/{tenant.org_id}/{uuid.uuid4()}")).status_code == 404
    assert (await hook(event, path="/webhooks/stripe/not-a-uuid/x")).status_code == 404


async def test_a_deleted_config_stops_verifying_at_once(hook, stubs, tenant):
    assert (await hook(gift_event(*_ids(), 100, "a@example.org"))).status_code == 200  # its secret is cached now
    await stubs.gateway_configs.DeleteGatewayConfig(gpb.DeleteGatewayConfigRequest(id=hook.config.id),
                                                    metadata=tenant.md)
    assert (await hook(gift_event(*_ids(), 100, "a@example.org"))).status_code == 404


async def test_a_gift_arrives_once_in_crm_with_its_donor_and_project(hook, stubs, tenant):
    project = (await stubs.projects.CreateProject(prpb.CreateProjectRequest(project=project_pb2.Project(
        name="Clean water", currency_code="USD", status=project_pb2.PROJECT_STATUS_ACTIVE)),
        metadata=tenant.md)).project
    donor = (await stubs.donors.CreateDonor(new_donor(email="grace@example.org"), metadata=tenant.md)).donor
    event_id, pi = _ids()
    event = gift_event(event_id, pi, 5000, "Grace@Example.org", project_id=project.id)
    for _ in range(3):  # Stripe retries; a replay changes nothing
        assert (await hook(event)).status_code == 200
    # the same payment reported by its Checkout Session too: still one gift
    session = {"id": f"evt_{uuid.uuid4().hex[:24]}", "object": "event", "type": "checkout.session.completed",
               "created": 1764547300, "data": {"object": {
                   "id": "cs_test_1", "object": "checkout.session", "payment_intent": pi, "payment_status": "paid",
                   "amount_total": 5000, "currency": "usd", "customer_details": {"email": "grace@example.org"},
                   "metadata": {"kind": "donation", "project_id": project.id}}}}
    assert (await hook(session)).status_code == 200
    gifts = await eventually(lambda: _donations(stubs, tenant), what="the gift in crm")
    (g,) = gifts
    assert g.donor_id == donor.id and g.project_id == project.id and from_money(g.amount) == 50
    assert g.payment_method == donation_pb2.PAYMENT_METHOD_CREDIT_CARD and g.reference_number == pi
    # a refund at the gateway refunds it in crm, once
    refund = refund_event(f"evt_{uuid.uuid4().hex[:24]}", pi, "re_1", 2000, 5000)
    assert (await hook(refund)).status_code == 200
    assert (await hook(refund)).status_code == 200

    async def refunded():
        (d,) = await _donations(stubs, tenant)
        return d if from_money(d.refunded_amount) == 20 else None

    await eventually(refunded, what="the refund in crm")
    assert len(await _donations(stubs, tenant)) == 1


async def test_a_refund_before_its_payment_waits_and_a_new_donor_is_created(hook, stubs, tenant):
    event_id, pi = _ids()
    early = await hook(refund_event(f"evt_{uuid.uuid4().hex[:24]}", pi, "re_early", 1000, 3000))
    assert early.status_code == 200 and "waits" in early.json()["received"]
    assert (await hook(gift_event(event_id, pi, 3000, "new.donor@example.org", name="Ada King"))).status_code == 200

    async def settled():
        gifts = await _donations(stubs, tenant)
        return gifts if gifts and from_money(gifts[0].refunded_amount) == 10 else None

    (g,) = await eventually(settled, what="the gift and its early refund in crm")
    from givance.crm.v1 import donor_service_pb2 as dpb

    donor = (await stubs.donors.GetDonor(dpb.GetDonorRequest(id=g.donor_id), metadata=tenant.md)).donor
    assert donor.email == "new.donor@example.org" and (donor.first_name, donor.last_name) == ("Ada", "King")


async def test_credentials_are_sealed_masked_and_one_active_config_per_gateway(stubs, tenant, admin_db):
    cfg = await gateway_config(stubs, tenant)
    assert cfg.secret_key_hint == "sk_test_…6789" and cfg.test_mode and cfg.active
    assert cfg.webhook_path == f"/webhooks/stripe/{tenant.org_id}/{cfg.id}"
    for resp in (cfg, (await stubs.gateway_configs.GetGatewayConfig(gpb.GetGatewayConfigRequest(id=cfg.id),
                                                                     metadata=tenant.md)).gateway_config,
                 await stubs.gateway_configs.ListGatewayConfigs(gpb.ListGatewayConfigsRequest(), metadata=tenant.md)):
        text = json_format.MessageToJson(resp) + str(resp.SerializeToString())
        assert SK not in text and WHSEC not in text and SK[8:] not in text
    row = await admin_db.fetchrow("SELECT * FROM billing.gateway_configs WHERE id = $1", uuid.UUID(cfg.id))
    dump = repr(dict(row))
    assert SK not in dump and WHSEC not in dump and row["credentials"].startswith("v1.")
    err = await fails(stubs.gateway_configs.CreateGatewayConfig(gpb.CreateGatewayConfigRequest(
        gateway_config=gateway_config_pb2.GatewayConfig(gateway=gateway_config_pb2.GATEWAY_STRIPE, secret_key=SK,
                                                        webhook_secret=WHSEC)), metadata=tenant.md),
        grpc.StatusCode.ALREADY_EXISTS)
    assert err
    bad = await fails(stubs.gateway_configs.CreateGatewayConfig(gpb.CreateGatewayConfigRequest(
        gateway_config=gateway_config_pb2.GatewayConfig(secret_key="pk_live_x", webhook_secret="nope")),
        metadata=tenant.md), grpc.StatusCode.INVALID_ARGUMENT)
    assert {"gateway_config.gateway", "gateway_config.secret_key", "gateway_config.webhook_secret"} <= set(
        field_violations(bad))
    deleted = (await stubs.gateway_configs.DeleteGatewayConfig(gpb.DeleteGatewayConfigRequest(id=cfg.id, etag=cfg.etag),
                                                               metadata=tenant.md)).gateway_config
    assert not deleted.active
    await fails(stubs.gateway_configs.GetGatewayConfig(gpb.GetGatewayConfigRequest(id=cfg.id), metadata=tenant.md),
                grpc.StatusCode.NOT_FOUND)
    # a new active config may follow the deleted one
    await gateway_config(stubs, tenant)


async def test_concurrent_events_and_replays_are_each_stored_once(hook, tenant, admin_db):
    import asyncio

    events = [gift_event(*_ids(), 100 + i, f"c{i}@example.org") for i in range(10)]
    answers = await asyncio.gather(*(hook(e) for e in events + events))
    assert {r.status_code for r in answers} == {200}
    details = sorted(r.json()["received"] for r in answers)
    assert details.count("payment recorded") == 10 and details.count("replayed: nothing done") == 10
    org = uuid.UUID(tenant.org_id)
    assert await admin_db.fetchval("SELECT count(*) FROM billing.webhook_events WHERE organization_id = $1", org) == 10
    assert await admin_db.fetchval("SELECT count(*) FROM billing.outbox WHERE tenant_id = $1 AND "
                                   "routing_key = 'billing.payment.succeeded'", org) == 10


async def test_an_event_with_nothing_to_do_is_stored_once_in_its_own_transaction(hook, admin_db, tenant, billing_db):
    """charge.updated asks for nothing but being stored: one statement that sets its tenant, as a
    transaction of its own; a replay stores nothing; the pooled connection keeps no tenant."""
    org = uuid.UUID(tenant.org_id)
    event = {"id": f"evt_{uuid.uuid4().hex[:24]}", "object": "event", "type": "charge.updated", "created": 1764547200,
             "livemode": False, "data": {"object": {"id": f"ch_{uuid.uuid4().hex[:24]}", "object": "charge"}}}
    first, again = await hook(event), await hook(event)
    assert first.json() == {"received": "charge.updated: stored, nothing to do"} and first.status_code == 200
    assert again.json() == {"received": "replayed: nothing done"}
    row = await admin_db.fetchrow("SELECT config_id, status, payload->>'type' AS type FROM billing.webhook_events "
                                  "WHERE organization_id = $1 AND event_id = $2", org, event["id"])
    assert (str(row["config_id"]), row["status"], row["type"]) == (hook.config.id, "ignored", "charge.updated")
    async with billing_db.alone() as conn:  # outside a unit of work: no tenant, no rows
        assert not (await conn.execute("SELECT current_setting('app.tenant_id', true) AS t")).scalar()
        assert (await conn.execute("SELECT count(*) FROM billing.webhook_events")).scalar() == 0
    # the config its events refer to is never deleted, only soft-deleted (no foreign key check per event)
    with pytest.raises(asyncpg.RestrictViolationError, match="deleted softly"):
        await admin_db.execute("DELETE FROM billing.gateway_configs WHERE id = $1", uuid.UUID(hook.config.id))
