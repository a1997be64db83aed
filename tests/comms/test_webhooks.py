"""Mailgun's event webhook in its real format and signature scheme: delivered, permanent failure,
complaint; a tampered or stale one is refused, a repeated one changes nothing."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import secrets
import time
import uuid

from givance.comms.v1 import message_pb2, suppression_pb2
from givance.comms.v1 import message_service_pb2 as mpb
from givance.comms.v1 import suppression_service_pb2 as xpb

from services.comms import replay
from services.comms.settings import CommsSettings
from tests.helpers import eventually

KEY = "key-test-mailgun-signing"


def _signed(event: str, message_id: str, *, key: str = KEY, age: int = 0, **extra) -> dict:
    ts, token = str(int(time.time()) - age), secrets.token_hex(25)
    return {
        "signature": {"timestamp": ts, "token": token,
                      "signature": hmac.new(key.encode(), f"{ts}{token}".encode(), hashlib.sha256).hexdigest()},
        "event-data": {"id": secrets.token_urlsafe(16), "event": event, "timestamp": time.time(),
                       "recipient": "someone@example.org",
                       "message": {"headers": {"message-id": message_id.strip("<>")}}, **extra},
    }


async def _sent(stubs, tenant, mailbox):
    to = f"hook-{uuid.uuid4().hex[:8]}@example.org"
    m = (await stubs.messages.SendMessage(mpb.SendMessageRequest(
        to_address=to, template_name="thank-you", variables={"amount": "$1", "date": "today"}),
        metadata=tenant.md)).message
    await mailbox.wait_for(to)

    async def sent():
        got = (await stubs.messages.GetMessage(mpb.GetMessageRequest(id=m.id), metadata=tenant.md)).message
        return got.status == message_pb2.MESSAGE_STATUS_SENT and got
    return await eventually(sent)


async def test_delivered_once_and_refused_when_tampered_or_stale(stubs, tenant, mailbox, comms_http, admin_db):
    m = await _sent(stubs, tenant, mailbox)
    payload = _signed("delivered", m.rfc822_message_id)
    r = await comms_http.post("/webhooks/mailgun", json=payload)
    assert (r.status_code, r.text) == (200, "applied")
    got = (await stubs.messages.GetMessage(mpb.GetMessageRequest(id=m.id), metadata=tenant.md)).message
    assert got.status == message_pb2.MESSAGE_STATUS_DELIVERED
    r = await comms_http.post("/webhooks/mailgun", json=payload)
    assert (r.status_code, r.text) == (200, "duplicate")
    assert await admin_db.fetchval("SELECT count(*) FROM comms.email_events WHERE message_id = $1 AND "
                                   "kind = 'delivered'", uuid.UUID(m.id)) == 1
    stored = await admin_db.fetchrow("SELECT payload, processed_at FROM comms.webhook_events WHERE "
                                     "provider_event_id = $1", payload["event-data"]["id"])
    assert stored["processed_at"] is not None and '"delivered"' in stored["payload"]
    tampered = _signed("failed", m.rfc822_message_id, severity="permanent")
    tampered["signature"]["signature"] = "0" * 64
    stale = _signed("failed", m.rfc822_message_id, severity="permanent", age=3600)
    wrong_key = _signed("failed", m.rfc822_message_id, severity="permanent", key="key-someone-else")
    for bad in (tampered, stale, wrong_key, {"event-data": tampered["event-data"]}):
        assert (await comms_http.post("/webhooks/mailgun", json=bad)).status_code == 406
    assert (await comms_http.post("/webhooks/mailgun", content=b"{nope")).status_code == 400
    got = (await stubs.messages.GetMessage(mpb.GetMessageRequest(id=m.id), metadata=tenant.md)).message
    assert got.status == message_pb2.MESSAGE_STATUS_DELIVERED
    # a message id comms did not make (or of a message that is not there) is acknowledged, not applied
    r = await comms_http.post("/webhooks/mailgun", json=_signed("delivered", f"<{uuid.uuid4().hex}@x>"))
    assert (r.status_code, r.text) == (200, "unknown-message")


async def test_a_permanent_failure_bounces_and_a_complaint_suppresses(stubs, tenant, mailbox, comms_http):
    bounced = await _sent(stubs, tenant, mailbox)
    r = await comms_http.post("/webhooks/mailgun", json=_signed(
        "failed", bounced.rfc822_message_id, severity="permanent",
        **{"delivery-status": {"code": 550, "message": "5.1.1 mailbox does not exist"}}))
    assert r.text == "applied"
    got = (await stubs.messages.GetMessage(mpb.GetMessageRequest(id=bounced.id), metadata=tenant.md)).message
    assert got.status == message_pb2.MESSAGE_STATUS_BOUNCED and "mailbox does not exist" in got.status_reason
    complained = await _sent(stubs, tenant, mailbox)
    assert (await comms_http.post("/webhooks/mailgun", json=_signed("complained", complained.rfc822_message_id))
            ).text == "applied"
    sups = (await stubs.suppressions.ListSuppressions(xpb.ListSuppressionsRequest(), metadata=tenant.md)).suppressions
    reasons = {s.address: s.reason for s in sups}
    assert reasons == {bounced.to_address: suppression_pb2.SUPPRESSION_REASON_HARD_BOUNCE,
                       complained.to_address: suppression_pb2.SUPPRESSION_REASON_COMPLAINT}


async def _replay(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = await replay.run(CommsSettings(), replay.parser().parse_args(list(argv)), out=out)
    return code, out.getvalue()


async def test_a_stored_event_is_replayed_once(stubs, tenant, mailbox, comms_http, admin_db):
    # delivered and applied: a replay finds its effects there and applies nothing twice
    m = await _sent(stubs, tenant, mailbox)
    payload = _signed("delivered", m.rfc822_message_id)
    assert (await comms_http.post("/webhooks/mailgun", json=payload)).text == "applied"
    row = await admin_db.fetchval("SELECT id FROM comms.webhook_events WHERE provider_event_id = $1",
                                  payload["event-data"]["id"])
    published = "SELECT count(*) FROM comms.outbox WHERE aggregate_id = $1 AND routing_key = $2"
    assert await admin_db.fetchval(published, m.id, "comms.email.delivered") == 1
    assert await _replay("replay", str(row)) == (0, f"{row} duplicate\n")
    assert await admin_db.fetchval(published, m.id, "comms.email.delivered") == 1

    # stored but never applied (a crash in between): listed as pending, applied by the replay, once
    bounced = await _sent(stubs, tenant, mailbox)
    lost = _signed("failed", bounced.rfc822_message_id, severity="permanent",
                   **{"delivery-status": {"code": 550, "message": "5.1.1 no such mailbox"}})
    lost_id = uuid.uuid4()
    await admin_db.execute(
        "INSERT INTO comms.webhook_events (id, organization_id, provider, provider_event_id, event_type, payload) "
        "VALUES ($1, $2, 'mailgun', $3, 'failed', $4::jsonb)", lost_id, uuid.UUID(tenant.org_id),
        lost["event-data"]["id"], json.dumps(lost))
    code, listed = await _replay("list", "--pending")
    assert code == 0 and f"{lost_id} " in listed and str(row) not in listed
    assert await _replay("replay", "--pending") == (0, f"{lost_id} applied\n")
    got = (await stubs.messages.GetMessage(mpb.GetMessageRequest(id=bounced.id), metadata=tenant.md)).message
    assert got.status == message_pb2.MESSAGE_STATUS_BOUNCED and "no such mailbox" in got.status_reason
    assert await _replay("replay", str(lost_id)) == (0, f"{lost_id} duplicate\n")
    # the provider's own retry of it is a duplicate too
    assert (await comms_http.post("/webhooks/mailgun", json=lost)).text == "duplicate"
    assert await admin_db.fetchval(published, bounced.id, "comms.email.bounced") == 1
    assert await admin_db.fetchval("SELECT count(*) FROM comms.email_events WHERE message_id = $1 "
                                   "AND kind = 'bounced'", uuid.UUID(bounced.id)) == 1
    unknown = uuid.uuid4()
    assert await _replay("replay", str(unknown)) == (1, f"{unknown} unknown-event\n")
