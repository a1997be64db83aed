"""The send queue end to end: to the catcher, bounces, deferrals, suppression, DKIM, the rate limit,
bad input."""

from __future__ import annotations

import email
import email.policy
import uuid

import dkim
import grpc
from givance.comms.v1 import message_pb2, settings_pb2, suppression_pb2, template_pb2
from givance.comms.v1 import message_service_pb2 as mpb
from givance.comms.v1 import settings_service_pb2 as spb
from givance.comms.v1 import suppression_service_pb2 as xpb
from givance.comms.v1 import template_service_pb2 as tpb
from google.protobuf import field_mask_pb2

from tests.comms.test_smtp import _dkim_key, dkim_dns
from tests.helpers import eventually, fails, invalid

S = message_pb2


async def _template(stubs, tenant, name="news", category="newsletters", **kw):
    kw.setdefault("subject", "News for {{ donor.first_name or 'you' }}")
    kw.setdefault("body_text", "Hello")
    kw.setdefault("body_html", '<p>Hello <a href="https://hope.example/story">story</a></p>')
    return (await stubs.templates.CreateTemplate(tpb.CreateTemplateRequest(template=template_pb2.Template(
        name=name, category=category, **kw)), metadata=tenant.md)).template


async def _send(stubs, tenant, to, template="news", **kw):
    return (await stubs.messages.SendMessage(mpb.SendMessageRequest(to_address=to, template_name=template, **kw),
                                             metadata=tenant.md)).message


async def _settled(stubs, tenant, message_id, *statuses):
    async def check():
        m = (await stubs.messages.GetMessage(mpb.GetMessageRequest(id=message_id), metadata=tenant.md)).message
        return m if m.status in statuses else None
    return await eventually(check, what=f"message {message_id} to reach {statuses}")


def _addr(prefix="d"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}@example.org"


async def test_a_hard_bounce_suppresses_the_address_and_the_next_send_is_skipped(stubs, tenant, mailbox, admin_db):
    await _template(stubs, tenant)
    to = _addr("bounce")
    m = await _settled(stubs, tenant, (await _send(stubs, tenant, to)).id, S.MESSAGE_STATUS_BOUNCED)
    assert "550" in m.status_reason and m.attempt_count == 1
    (sup,) = (await stubs.suppressions.ListSuppressions(xpb.ListSuppressionsRequest(), metadata=tenant.md)).suppressions
    assert sup.address == to and sup.reason == suppression_pb2.SUPPRESSION_REASON_HARD_BOUNCE
    again = await _send(stubs, tenant, to)
    assert again.status == S.MESSAGE_STATUS_SUPPRESSED and "suppressed" in again.status_reason
    assert await admin_db.fetchval("SELECT count(*) FROM comms.send_jobs WHERE message_id = $1",
                                   uuid.UUID(again.id)) == 0
    kinds = [r["kind"] for r in await admin_db.fetch(
        "SELECT kind FROM comms.email_events WHERE message_id = $1", uuid.UUID(again.id))]
    assert kinds == ["suppressed"]
    assert mailbox.to(to) == []
    events = await admin_db.fetch("SELECT routing_key FROM comms.outbox WHERE tenant_id = $1",
                                  uuid.UUID(tenant.org_id))
    assert "comms.email.bounced" in [e["routing_key"] for e in events]


async def test_a_deferral_is_retried_with_back_off_then_fails(stubs, tenant, mailbox):
    await _template(stubs, tenant)
    to = _addr("defer")
    m = await _settled(stubs, tenant, (await _send(stubs, tenant, to)).id, S.MESSAGE_STATUS_FAILED)
    assert m.attempt_count == 5 and "451" in m.status_reason
    assert not (await stubs.suppressions.ListSuppressions(xpb.ListSuppressionsRequest(),
                                                          metadata=tenant.md)).suppressions


async def test_a_manually_suppressed_address_is_never_sent_and_can_be_released(stubs, tenant, mailbox):
    await _template(stubs, tenant)
    to = _addr()
    sup = (await stubs.suppressions.AddSuppression(xpb.AddSuppressionRequest(
        suppression=suppression_pb2.Suppression(address=to.upper(), note="asked by phone")),
        metadata=tenant.md)).suppression
    assert sup.address == to and sup.reason == suppression_pb2.SUPPRESSION_REASON_MANUAL
    assert (await _send(stubs, tenant, to)).status == S.MESSAGE_STATUS_SUPPRESSED
    await stubs.suppressions.DeleteSuppression(xpb.DeleteSuppressionRequest(id=sup.id), metadata=tenant.md)
    sent = await _send(stubs, tenant, to)
    await _settled(stubs, tenant, sent.id, S.MESSAGE_STATUS_SENT)
    assert len(await mailbox.wait_for(to)) == 1
    history = (await stubs.suppressions.ListConsentChanges(xpb.ListConsentChangesRequest(address=to),
                                                           metadata=tenant.md)).changes
    assert [(c.granted, c.source) for c in history] == [(True, "api"), (False, "api")]


async def test_the_organizations_sender_identity_and_dkim_key_sign_what_arrives(stubs, tenant, mailbox, admin_db):
    pem, record = _dkim_key()
    got = (await stubs.comms_settings.UpdateSendingSettings(spb.UpdateSendingSettingsRequest(
        settings=settings_pb2.SendingSettings(from_name="Hope Fund", from_address="giving@hope.example",
                                              reply_to="office@hope.example", dkim_domain="hope.example",
                                              dkim_selector="s1", dkim_private_key=pem.decode()),
        update_mask=field_mask_pb2.FieldMask(paths=["from_name", "from_address", "reply_to", "dkim_domain",
                                                    "dkim_selector", "dkim_private_key"])),
        metadata=tenant.md)).settings
    assert got.has_dkim_key and got.dkim_private_key == ""
    sealed = await admin_db.fetchval("SELECT dkim_key_sealed FROM comms.settings WHERE organization_id = $1",
                                     uuid.UUID(tenant.org_id))
    assert sealed.startswith("v1.") and "PRIVATE KEY" not in sealed
    await _template(stubs, tenant)
    to = _addr()
    sent = await _send(stubs, tenant, to)
    (raw_id,) = [m["id"] for m in await eventually(lambda: mailbox.to(to))]
    raw = mailbox.raw(raw_id)
    assert dkim.verify(raw, dnsfunc=dkim_dns(record))
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["From"] == "Hope Fund <giving@hope.example>" and msg["Reply-To"] == "office@hope.example"
    assert msg["Message-ID"] == sent.rfc822_message_id and sent.rfc822_message_id.endswith("@hope.example>")
    # a stale etag is refused; a key that is not a key is INVALID_ARGUMENT naming the field
    await fails(stubs.comms_settings.UpdateSendingSettings(spb.UpdateSendingSettingsRequest(
        settings=settings_pb2.SendingSettings(from_name="X", etag='W/"1"'),
        update_mask=field_mask_pb2.FieldMask(paths=["from_name"])), metadata=tenant.md), grpc.StatusCode.ABORTED)
    await invalid(stubs.comms_settings.UpdateSendingSettings(spb.UpdateSendingSettingsRequest(
        settings=settings_pb2.SendingSettings(dkim_private_key="not a key"),
        update_mask=field_mask_pb2.FieldMask(paths=["dkim_private_key"])), metadata=tenant.md),
        "settings.dkim_private_key")


async def test_the_send_rate_holds_messages_beyond_the_organizations_limit(stubs, tenant, mailbox, admin_db):
    await stubs.comms_settings.UpdateSendingSettings(spb.UpdateSendingSettingsRequest(
        settings=settings_pb2.SendingSettings(send_rate_per_minute=1),
        update_mask=field_mask_pb2.FieldMask(paths=["send_rate_per_minute"])), metadata=tenant.md)
    await _template(stubs, tenant)
    first, second = _addr(), _addr()
    a = await _send(stubs, tenant, first)
    await _settled(stubs, tenant, a.id, S.MESSAGE_STATUS_SENT)
    b = await _send(stubs, tenant, second)
    # the bucket is empty: the job waits (its due time moves on), nothing is sent
    await eventually(lambda: admin_db.fetchval(
        "SELECT attempts = 0 AND due_at > now() FROM comms.send_jobs WHERE message_id = $1", uuid.UUID(b.id)))
    got = (await stubs.messages.GetMessage(mpb.GetMessageRequest(id=b.id), metadata=tenant.md)).message
    assert got.status == S.MESSAGE_STATUS_QUEUED and mailbox.to(second) == []


async def test_bad_input_is_invalid_argument_naming_the_field(stubs, tenant):
    await _template(stubs, tenant, name="vars", body_text="{{ greeting }}", body_html="", subject="s",
                    variables=["greeting"])
    md = tenant.md
    await invalid(stubs.messages.SendMessage(mpb.SendMessageRequest(to_address="not an address",
                                                                    template_name="vars"), metadata=md), "to_address")
    await invalid(stubs.messages.SendMessage(mpb.SendMessageRequest(to_address="a@example.org",
                                                                    template_name="vars",
                                                                    variables={"nope": "x"}), metadata=md),
                  "variables")
    await invalid(stubs.messages.SendMessage(mpb.SendMessageRequest(to_address="a@example.org",
                                                                    template_name="vars",
                                                                    variables={"greeting": "x" * 70_000}),
                                             metadata=md), "variables")
    await invalid(stubs.messages.SendMessage(mpb.SendMessageRequest(to_address="a@example.org",
                                                                    template_name="Bad Name!"), metadata=md),
                  "template_name")
    await invalid(stubs.messages.SendMessage(mpb.SendMessageRequest(template_name="vars"), metadata=md), "donor_id")
    await invalid(stubs.messages.SendMessage(mpb.SendMessageRequest(to_address="a@example.org", template_name="vars",
                                                                    request_id="r" * 101), metadata=md), "request_id")
    await invalid(stubs.templates.CreateTemplate(tpb.CreateTemplateRequest(template=template_pb2.Template(
        name="t-undeclared", category="newsletters", subject="s", body_text="{{ secret }}")), metadata=md),
        "template.body_text")
    await invalid(stubs.templates.CreateTemplate(tpb.CreateTemplateRequest(template=template_pb2.Template(
        name="t-big", category="newsletters", subject="s", body_text="x" * (256 * 1024 + 1))), metadata=md),
        "template.body_text")
    await invalid(stubs.templates.CreateTemplate(tpb.CreateTemplateRequest(template=template_pb2.Template(
        name="t-syntax", category="newsletters", subject="s", body_text="{% if %}")), metadata=md),
        "template.body_text")
    await invalid(stubs.suppressions.AddSuppression(xpb.AddSuppressionRequest(
        suppression=suppression_pb2.Suppression(address="nobody")), metadata=md), "suppression.address")
    await invalid(stubs.messages.ListMessages(mpb.ListMessagesRequest(page_size=-1), metadata=md), "page_size")


async def test_a_send_is_idempotent_by_request_id(stubs, tenant, mailbox):
    await _template(stubs, tenant)
    to = _addr()
    a = await _send(stubs, tenant, to, request_id="once")
    b = await _send(stubs, tenant, to, request_id="once")
    assert a.id == b.id
    await _settled(stubs, tenant, a.id, S.MESSAGE_STATUS_SENT)
    assert len(mailbox.to(to)) == 1
