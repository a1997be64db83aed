"""crm keeps an email status on the donor from comms' events, through the bus: a hard bounce, a
complaint and an unsubscribe from everything mark the donor's current address; one category's
unsubscribe does not; a new address starts OK; the inbox makes a redelivery harmless."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
import uuid

from givance.comms.v1 import message_pb2, template_pb2
from givance.comms.v1 import message_service_pb2 as mpb
from givance.comms.v1 import template_service_pb2 as tpb
from givance.crm.v1 import donor_pb2
from givance.crm.v1 import donor_service_pb2 as dpb
from google.protobuf import field_mask_pb2

from tests.helpers import eventually, new_donor

KEY = "key-test-mailgun-signing"


async def _status(stubs, md, donor_id, want):
    async def check():
        d = (await stubs.donors.GetDonor(dpb.GetDonorRequest(id=donor_id), metadata=md)).donor
        return d.email_status == want and d
    return await eventually(check, what=f"crm's email status {donor_pb2.EmailStatus.Name(want)}")


async def _news(stubs, md):
    name = f"es-{uuid.uuid4().hex[:6]}"
    await stubs.templates.CreateTemplate(tpb.CreateTemplateRequest(template=template_pb2.Template(
        name=name, category="newsletters", subject="News", body_text="Hello",
        body_html="<p>Hello</p>")), metadata=md)
    return name


async def _sent(stubs, md, mailbox, donor, template):
    m = (await stubs.messages.SendMessage(mpb.SendMessageRequest(donor_id=donor.id, template_name=template),
                                          metadata=md)).message
    (mail,) = await mailbox.wait_for(donor.email)

    async def sent():
        got = (await stubs.messages.GetMessage(mpb.GetMessageRequest(id=m.id), metadata=md)).message
        return got.status == message_pb2.MESSAGE_STATUS_SENT and got
    return await eventually(sent), mail


async def test_bounce_complaint_and_unsubscribe_mark_the_donor(stubs, tenant, mailbox, comms_http, admin_db):
    md = tenant.md
    news = await _news(stubs, md)
    # a hard bounce (the catcher refuses bounce* for good)
    bouncing = (await stubs.donors.CreateDonor(new_donor(email=f"bounce-{uuid.uuid4().hex[:8]}@example.org"),
                                               metadata=md)).donor
    assert bouncing.email_status == donor_pb2.EMAIL_STATUS_OK
    await stubs.messages.SendMessage(mpb.SendMessageRequest(donor_id=bouncing.id, template_name=news), metadata=md)
    marked = await _status(stubs, md, bouncing.id, donor_pb2.EMAIL_STATUS_BOUNCED)
    assert marked.HasField("email_status_time")

    # a complaint through the provider's webhook
    plaintive = (await stubs.donors.CreateDonor(new_donor(email=f"spam-{uuid.uuid4().hex[:8]}@example.org"),
                                                metadata=md)).donor
    m, _ = await _sent(stubs, md, mailbox, plaintive, news)
    ts, token = str(int(time.time())), secrets.token_hex(25)
    payload = {"signature": {"timestamp": ts, "token": token, "signature": hmac.new(
        KEY.encode(), f"{ts}{token}".encode(), hashlib.sha256).hexdigest()},
        "event-data": {"id": secrets.token_urlsafe(16), "event": "complained",
                       "message": {"headers": {"message-id": m.rfc822_message_id.strip("<>")}}}}
    assert (await comms_http.post("/webhooks/mailgun", json=payload)).text == "applied"
    await _status(stubs, md, plaintive.id, donor_pb2.EMAIL_STATUS_COMPLAINED)

    # one category's unsubscribe leaves the donor reachable; everything marks them
    leaving = (await stubs.donors.CreateDonor(new_donor(email=f"leave-{uuid.uuid4().hex[:8]}@example.org"),
                                              metadata=md)).donor
    _, mail = await _sent(stubs, md, mailbox, leaving, news)
    unsub = "/u/" + re.search(r"<https?://[^>]*/u/([^>]+)>", mail["List-Unsubscribe"]).group(1)
    assert (await comms_http.post(unsub, content=b"List-Unsubscribe=One-Click",
                                  headers={"content-type": "application/x-www-form-urlencoded"})).status_code == 200
    assert (await comms_http.post(unsub, data={"scope": "all"})).status_code == 200
    await _status(stubs, md, leaving.id, donor_pb2.EMAIL_STATUS_UNSUBSCRIBED)
    consumed = await admin_db.fetchval(
        "SELECT count(*) FROM crm.inbox i JOIN comms.outbox o ON o.event_id = i.event_id "
        "WHERE i.consumer = 'crm.donor-email-status' AND o.aggregate_id = $1", m.id)
    assert consumed == 1  # the complaint, handled once

    # a new address starts again
    changed = (await stubs.donors.UpdateDonor(dpb.UpdateDonorRequest(
        donor=donor_pb2.Donor(id=leaving.id, email=f"new-{uuid.uuid4().hex[:8]}@example.org", etag=(
            await stubs.donors.GetDonor(dpb.GetDonorRequest(id=leaving.id), metadata=md)).donor.etag),
        update_mask=field_mask_pb2.FieldMask(paths=["email"])), metadata=md)).donor
    assert changed.email_status == donor_pb2.EMAIL_STATUS_OK and not changed.HasField("email_status_time")
