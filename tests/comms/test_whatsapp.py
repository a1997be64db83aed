"""WhatsApp inbound in Meta's format: the verify-token handshake, X-Hub-Signature-256, the staff
allowlist (an unknown number is stored and answered with nothing), a repeated delivery is a no-op."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import uuid

import grpc
from givance.comms.v1 import settings_pb2
from givance.comms.v1 import settings_service_pb2 as spb
from givance.events.v1 import ai_events_pb2

from chassis.db import Database, create_engine
from chassis.settings import ServiceSettings
from tests.helpers import eventually, fails, invalid

SECRET = "test-meta-app-secret"


def _payload(from_digits: str, text: str) -> dict:
    return {"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550001111", "phone_number_id": "1"},
        "contacts": [{"profile": {"name": "Staff"}, "wa_id": from_digits}],
        "messages": [{"from": from_digits, "id": f"wamid.{secrets.token_hex(12)}", "timestamp": str(int(time.time())),
                      "type": "text", "text": {"body": text}}]}}]}]}


def _post(comms_http, payload: dict, secret: str = SECRET):
    body = json.dumps(payload).encode()
    sig = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return comms_http.post("/webhooks/whatsapp", content=body,
                           headers={"x-hub-signature-256": sig, "content-type": "application/json"})


async def test_verify_token_handshake(comms_http):
    ok = await comms_http.get("/webhooks/whatsapp", params={"hub.mode": "subscribe", "hub.verify_token":
                                                            "test-verify-token", "hub.challenge": "1158201444"})
    assert (ok.status_code, ok.text) == (200, "1158201444")
    bad = await comms_http.get("/webhooks/whatsapp", params={"hub.mode": "subscribe", "hub.verify_token": "guess",
                                                             "hub.challenge": "x"})
    assert bad.status_code == 403


async def test_staff_messages_are_published_once_and_strangers_get_nothing(stubs, tenant, other_tenant, comms_http,
                                                                          admin_db):
    digits = f"1202555{secrets.randbelow(10_000):04d}"
    staff = (await stubs.comms_settings.AddWhatsAppStaff(spb.AddWhatsAppStaffRequest(
        staff=settings_pb2.WhatsAppStaff(phone=f"+{digits}", user_id=tenant.user_id)), metadata=tenant.md)).staff
    assert staff.phone == f"+{digits}"
    # the number is this organization's: another cannot claim it, or see or remove it
    await fails(stubs.comms_settings.AddWhatsAppStaff(spb.AddWhatsAppStaffRequest(
        staff=settings_pb2.WhatsAppStaff(phone=f"+{digits}")), metadata=other_tenant.md),
        grpc.StatusCode.ALREADY_EXISTS)
    assert not (await stubs.comms_settings.ListWhatsAppStaff(spb.ListWhatsAppStaffRequest(),
                                                             metadata=other_tenant.md)).staff
    await fails(stubs.comms_settings.RemoveWhatsAppStaff(spb.RemoveWhatsAppStaffRequest(id=staff.id),
                                                         metadata=other_tenant.md), grpc.StatusCode.NOT_FOUND)
    await invalid(stubs.comms_settings.AddWhatsAppStaff(spb.AddWhatsAppStaffRequest(
        staff=settings_pb2.WhatsAppStaff(phone="12")), metadata=tenant.md), "staff.phone")

    payload = _payload(digits, "How much did the Smiths give this year?")
    r = await _post(comms_http, payload)
    assert (r.status_code, r.text) == (200, "accepted")
    assert (await _post(comms_http, payload)).text == "duplicate"
    assert (await _post(comms_http, payload, secret="wrong")).status_code == 401
    events = await admin_db.fetch("SELECT routing_key FROM comms.outbox WHERE aggregate_id = $1", f"+{digits}")
    assert [e["routing_key"] for e in events] == ["comms.whatsapp.message_received"]
    stored = await admin_db.fetchval("SELECT count(*) FROM comms.webhook_events WHERE organization_id = $1 "
                                     "AND provider = 'whatsapp'", uuid.UUID(tenant.org_id))
    assert stored == 1

    stranger = _payload("447700900123", "hello?")
    assert (await _post(comms_http, stranger)).text == "unknown-number"
    assert await admin_db.fetchval("SELECT count(*) FROM comms.unrouted_webhooks WHERE provider_event_id = $1",
                                   stranger["entry"][0]["changes"][0]["value"]["messages"][0]["id"]) == 1
    await stubs.comms_settings.RemoveWhatsAppStaff(spb.RemoveWhatsAppStaffRequest(id=staff.id), metadata=tenant.md)
    assert (await _post(comms_http, _payload(digits, "still there?"))).text == "unknown-number"


async def test_the_assistants_replies_go_through_the_cloud_api_to_the_organizations_staff_only(
        stubs, tenant, other_tenant, whatsapp_cloud, admin_db):
    """ai's answers (ai.whatsapp.reply_requested, through ai's outbox and the bus) reach comms'
    WhatsApp Cloud API provider (a local server of its wire format): a 429 is retried, and a reply
    to a number that is not one of the organization's staff numbers is never sent."""
    ours, theirs = f"1202555{secrets.randbelow(10_000):04d}", f"1202556{secrets.randbelow(10_000):04d}"
    await stubs.comms_settings.AddWhatsAppStaff(spb.AddWhatsAppStaffRequest(
        staff=settings_pb2.WhatsAppStaff(phone=f"+{ours}", user_id=tenant.user_id)), metadata=tenant.md)
    await stubs.comms_settings.AddWhatsAppStaff(spb.AddWhatsAppStaffRequest(
        staff=settings_pb2.WhatsAppStaff(phone=f"+{theirs}", user_id=other_tenant.user_id)), metadata=other_tenant.md)
    ai_db = Database(create_engine(ServiceSettings().app_database_url("ai"), pool_size=1), "ai")
    try:
        whatsapp_cloud.fail_next = 1  # rate limited once: the provider backs off and sends again
        async with ai_db.unit_of_work(uuid.UUID(tenant.org_id)) as uow:
            uow.publish("ai.whatsapp.reply_requested", ai_events_pb2.WhatsAppReplyRequestedEvent(
                query_id=str(uuid.uuid4()), to_phone=f"+{ours}", text="Ada Lovelace: 1 recorded gift(s)."),
                aggregate_type="whatsapp_query", aggregate_id="a")
            leak = uow.publish("ai.whatsapp.reply_requested", ai_events_pb2.WhatsAppReplyRequestedEvent(
                query_id=str(uuid.uuid4()), to_phone=f"+{theirs}", text="another organization's staff"),
                aggregate_type="whatsapp_query", aggregate_id="b")
    finally:
        await ai_db.dispose()
    [sent] = await eventually(lambda: whatsapp_cloud.to(f"+{ours}") or None, what="the reply at the Cloud API")
    assert sent["text"]["body"] == "Ada Lovelace: 1 recorded gift(s)." and sent["messaging_product"] == "whatsapp"
    assert whatsapp_cloud.fail_next == 0
    await eventually(lambda: admin_db.fetchval("SELECT 1 FROM comms.inbox WHERE consumer = 'comms.whatsapp-replies' "
                                               "AND event_id = $1", uuid.UUID(leak)), what="comms handling the other")
    assert whatsapp_cloud.to(f"+{theirs}") == []
