"""SendGrid's signed event webhook in its real format and signature scheme (ECDSA P-256 over the
timestamp header and the raw body, checked here with SendGrid's own SDK too): a batch of events
applied once each; a tampered, stale or unsigned batch is refused; a redelivery changes nothing."""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from givance.comms.v1 import message_pb2, suppression_pb2
from givance.comms.v1 import message_service_pb2 as mpb
from givance.comms.v1 import suppression_service_pb2 as xpb
from sendgrid.helpers.eventwebhook import EventWebhook

from tests.conftest import SENDGRID_TEST_PUBLIC_KEY
from tests.helpers import eventually

# The private half of conftest's SENDGRID_TEST_PUBLIC_KEY (a test key, nothing else).
PRIVATE = serialization.load_pem_private_key(b"""-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgN/1yrc+WxCyaG8eF
BWm0BIoBro/8rHorYBdLkdzBHWChRANCAAQ4vwqib4Ra+B7sLyf2r2sSmphWi1Wn
YhKL+EA6vkxxm46WHOjhVykn+4tI4nOreKj3j3vu7AOiMqIyToxhT29l
-----END PRIVATE KEY-----
""", password=None)


def _signed(events: list[dict], *, age: int = 0, key=PRIVATE) -> tuple[bytes, dict]:
    body = json.dumps(events).encode()
    ts = str(int(time.time()) - age)
    sig = base64.b64encode(key.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
    return body, {"content-type": "application/json", "X-Twilio-Email-Event-Webhook-Signature": sig,
                  "X-Twilio-Email-Event-Webhook-Timestamp": ts}


def _event(kind: str, m, **extra) -> dict:
    return {"email": m.to_address, "timestamp": int(time.time()), "smtp-id": m.rfc822_message_id, "event": kind,
            "sg_event_id": secrets.token_urlsafe(16), "sg_message_id": f"{secrets.token_hex(8)}.filter", **extra}


async def _sent(stubs, tenant, mailbox):
    to = f"sg-{uuid.uuid4().hex[:8]}@example.org"
    m = (await stubs.messages.SendMessage(mpb.SendMessageRequest(
        to_address=to, template_name="thank-you", variables={"amount": "$1", "date": "today"}),
        metadata=tenant.md)).message
    await mailbox.wait_for(to)

    async def sent():
        got = (await stubs.messages.GetMessage(mpb.GetMessageRequest(id=m.id), metadata=tenant.md)).message
        return got.status == message_pb2.MESSAGE_STATUS_SENT and got
    return await eventually(sent)


async def test_signed_events_apply_once_and_forgeries_are_refused(stubs, tenant, mailbox, comms_http, admin_db):
    delivered, bounced, complained = [await _sent(stubs, tenant, mailbox) for _ in range(3)]
    events = [_event("processed", delivered), _event("delivered", delivered),
              _event("bounce", bounced, type="bounce", status="5.1.1", reason="550 5.1.1 unknown user"),
              _event("spamreport", complained)]
    body, headers = _signed(events)
    # the format is SendGrid's: its own SDK accepts the signature
    assert EventWebhook().verify_signature(body.decode(), headers["X-Twilio-Email-Event-Webhook-Signature"],
                                           headers["X-Twilio-Email-Event-Webhook-Timestamp"],
                                           EventWebhook().convert_public_key_to_ecdsa(SENDGRID_TEST_PUBLIC_KEY))

    tampered = body.replace(b"spamreport", b"delivered!")
    stale_body, stale = _signed(events, age=3600)
    stranger = ec.generate_private_key(ec.SECP256R1())
    _, forged = _signed(events, key=stranger)
    for bad_body, bad_headers in ((tampered, headers), (stale_body, stale), (body, forged),
                                  (body, {"content-type": "application/json"})):
        assert (await comms_http.post("/webhooks/sendgrid", content=bad_body, headers=bad_headers)).status_code == 403
    assert not await admin_db.fetchval("SELECT count(*) FROM comms.webhook_events WHERE provider = 'sendgrid' "
                                       "AND organization_id = $1", uuid.UUID(tenant.org_id))

    r = await comms_http.post("/webhooks/sendgrid", content=body, headers=headers)
    assert (r.status_code, r.text) == (200, "ignored,applied,applied,applied")  # "processed": stored, no effect
    got = {m.id: (await stubs.messages.GetMessage(mpb.GetMessageRequest(id=m.id), metadata=tenant.md)).message
           for m in (delivered, bounced)}
    assert got[delivered.id].status == message_pb2.MESSAGE_STATUS_DELIVERED
    assert got[bounced.id].status == message_pb2.MESSAGE_STATUS_BOUNCED
    assert "unknown user" in got[bounced.id].status_reason
    sups = (await stubs.suppressions.ListSuppressions(xpb.ListSuppressionsRequest(), metadata=tenant.md)).suppressions
    assert {s.address: s.reason for s in sups} == {
        bounced.to_address: suppression_pb2.SUPPRESSION_REASON_HARD_BOUNCE,
        complained.to_address: suppression_pb2.SUPPRESSION_REASON_COMPLAINT}

    # SendGrid redelivers the batch: nothing twice
    again = await comms_http.post("/webhooks/sendgrid", content=body, headers=headers)
    assert (again.status_code, again.text) == (200, "duplicate,duplicate,duplicate,duplicate")
    assert await admin_db.fetchval("SELECT count(*) FROM comms.outbox WHERE routing_key LIKE 'comms.email.%' "
                                   "AND aggregate_id = ANY($1) AND routing_key <> 'comms.email.sent'",
                                   [delivered.id, bounced.id, complained.id]) == 3
