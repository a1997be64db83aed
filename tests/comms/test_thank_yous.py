"""Thank-yous on crm.donation.recorded, by the organization's settings, never twice for one gift;
yearly receipts with a PDF and crm's receipt flags."""

from __future__ import annotations

import datetime as dt
import uuid

from givance.comms.v1 import message_pb2, settings_pb2
from givance.comms.v1 import message_service_pb2 as mpb
from givance.comms.v1 import settings_service_pb2 as spb
from givance.crm.v1 import donation_service_pb2 as dpb
from google.protobuf import duration_pb2, field_mask_pb2

from tests.helpers import eventually, gift, invalid, new_donor


async def _settings(stubs, tenant, **kw):
    await stubs.comms_settings.UpdateSendingSettings(spb.UpdateSendingSettingsRequest(
        settings=settings_pb2.SendingSettings(**kw), update_mask=field_mask_pb2.FieldMask(paths=list(kw))),
        metadata=tenant.md)


async def _handled(admin_db, donor_id: str, count: int) -> None:
    """Wait until comms' thank-you consumer has handled the donor's first `count` gift events."""
    async def done():
        ids = [r["event_id"] for r in await admin_db.fetch(
            "SELECT event_id FROM crm.outbox WHERE aggregate_id = $1 AND routing_key = 'crm.donation.recorded' "
            "ORDER BY id", donor_id)]
        if len(ids) < count:
            return False
        handled = await admin_db.fetchval("SELECT count(*) FROM comms.inbox WHERE consumer = 'comms.thank-yous' "
                                          "AND event_id = ANY($1::uuid[])", ids[:count])
        return handled == count
    await eventually(done, what="comms to handle the gifts")


async def test_thank_yous_follow_the_settings_and_each_gift_is_thanked_once(stubs, tenant, mailbox, admin_db):
    md = tenant.md
    email = f"giver-{uuid.uuid4().hex[:8]}@example.org"
    donor = (await stubs.donors.CreateDonor(new_donor(first_name="Ada", email=email), metadata=md)).donor
    # off by default: nothing sent
    await stubs.donations.RecordDonation(gift(donor.id, request_id="g0"), metadata=md)
    await _handled(admin_db, donor.id, 1)
    other = (await stubs.donors.CreateDonor(new_donor(first_name="Bea", email=f"b-{email}"), metadata=md)).donor
    await _settings(stubs, tenant, thank_you_enabled=True, thank_you_first_gift_only=True, from_name="Hope Fund",
                    signature="Grace, for Hope Fund")
    # first gift only: Ada's second gift is not thanked, Bea's first is
    await stubs.donations.RecordDonation(gift(donor.id, request_id="g1"), metadata=md)
    first = (await stubs.donations.RecordDonation(gift(other.id, request_id="g2"), metadata=md)).donation
    await _handled(admin_db, donor.id, 2)
    (mail,) = await mailbox.wait_for(f"b-{email}")
    assert mail["Subject"] == "Thank you, Bea"
    text = mail.get_body(("plain",)).get_content()
    assert "Thank you for your gift of $100.00" in text and "Grace, for Hope Fund" in text
    assert mail["From"].startswith("Hope Fund") and mail["List-Unsubscribe"]
    assert mailbox.to(email) == []
    # every gift: Ada's next one is thanked
    await _settings(stubs, tenant, thank_you_first_gift_only=False)
    third = (await stubs.donations.RecordDonation(gift(donor.id, request_id="g3"), metadata=md)).donation
    await mailbox.wait_for(email)
    rows = await admin_db.fetch("SELECT source_key FROM comms.messages WHERE organization_id = $1 AND "
                                "source_key LIKE 'thank-you:%' ORDER BY created_at", uuid.UUID(tenant.org_id))
    assert [r["source_key"] for r in rows] == [f"thank-you:{first.id}", f"thank-you:{third.id}"]
    # the same gift's event again (a replay from the dead-letter queue, say): nothing new
    from givance.events.v1 import crm_events_pb2, event_pb2
    from google.protobuf import any_pb2

    from services.comms.consumers.bound import _BY_ENGINE
    from services.comms.consumers.donations import on_donation_recorded

    payload = any_pb2.Any()
    payload.Pack(crm_events_pb2.DonationRecordedEvent(
        donation_id=third.id, donor_id=donor.id, amount=third.amount, date=third.date, donor_email=email,
        donor_first_name="Ada"))
    (deps,) = _BY_ENGINE.values()  # the running comms' own (its consumer's) dependencies
    async with deps.db.unit_of_work(uuid.UUID(tenant.org_id)) as uow:
        await on_donation_recorded(uow, event_pb2.Event(id=str(uuid.uuid4()), type="crm.donation.recorded",
                                                        payload=payload))
    assert await admin_db.fetchval("SELECT count(*) FROM comms.messages WHERE source_key = $1",
                                   f"thank-you:{third.id}") == 1


async def test_a_delay_schedules_the_thank_you(stubs, tenant, admin_db):
    md = tenant.md
    await _settings(stubs, tenant, thank_you_enabled=True, thank_you_delay=duration_pb2.Duration(seconds=3600))
    donor = (await stubs.donors.CreateDonor(new_donor(email=f"later-{uuid.uuid4().hex[:6]}@example.org"),
                                            metadata=md)).donor
    await stubs.donations.RecordDonation(gift(donor.id), metadata=md)

    async def scheduled():
        msgs = (await stubs.messages.ListMessages(mpb.ListMessagesRequest(donor_id=donor.id), metadata=md)).messages
        return msgs and msgs[0]
    m = await eventually(scheduled)
    assert m.status == message_pb2.MESSAGE_STATUS_QUEUED
    assert m.schedule_time.ToDatetime(tzinfo=dt.UTC) > dt.datetime.now(dt.UTC) + dt.timedelta(minutes=50)


async def test_a_yearly_receipt_has_the_pdf_and_sets_crms_receipt_flags(stubs, tenant, mailbox):
    md = tenant.md
    email = f"receipt-{uuid.uuid4().hex[:8]}@example.org"
    donor = (await stubs.donors.CreateDonor(new_donor(email=email), metadata=md)).donor
    year = dt.date.today().year
    gifts = [(await stubs.donations.RecordDonation(gift(donor.id), metadata=md)).donation for _ in range(2)]
    resp = await stubs.messages.SendReceipt(mpb.SendReceiptRequest(donor_id=donor.id, year=year, request_id="r1"),
                                            metadata=md)
    assert sorted(resp.donation_ids) == sorted(g.id for g in gifts)
    (mail,) = await mailbox.wait_for(email)
    assert mail["Subject"] == f"Your {year} giving receipt"
    assert "$" in mail.get_body(("plain",)).get_content() or "USD" in mail.get_body(("plain",)).get_content()
    (pdf,) = list(mail.iter_attachments())
    assert pdf.get_filename() == f"receipt-{year}.pdf" and pdf.get_content().startswith(b"%PDF")
    summary = await stubs.donations.GetReceiptSummary(dpb.GetReceiptSummaryRequest(donor_id=donor.id, year=year),
                                                      metadata=md)
    assert all(g.receipt_sent for t in summary.totals for g in t.gifts)
    again = await stubs.messages.SendReceipt(mpb.SendReceiptRequest(donor_id=donor.id, year=year, request_id="r1"),
                                             metadata=md)
    assert again.message.id == resp.message.id
    await invalid(stubs.messages.SendReceipt(mpb.SendReceiptRequest(donor_id=donor.id, year=1066), metadata=md),
                  "year")


async def test_the_thank_you_reads_the_donor_from_crm_with_comms_tenant_token(stubs, tenant, mailbox):
    """The consumer has no caller: it reads the donor's address with comms' own tenant token
    (chassis.tenant_tokens), so crm's trail names service:comms as the reader."""
    from givance.identity.v1 import audit_service_pb2 as apb

    md = tenant.md
    email = f"read-{uuid.uuid4().hex[:8]}@example.org"
    donor = (await stubs.donors.CreateDonor(new_donor(first_name="Cleo", email=email), metadata=md)).donor
    await _settings(stubs, tenant, thank_you_enabled=True)
    await stubs.donations.RecordDonation(gift(donor.id, request_id="t1"), metadata=md)
    (mail,) = await mailbox.wait_for(email)
    assert mail["Subject"] == "Thank you, Cleo"

    async def read_by_comms():
        got = await stubs.audit.ListActivity(apb.ListActivityRequest(actor_id="service:comms", resource_id=donor.id),
                                             metadata=md)
        return [e for e in got.entries if e.action == "crm.donor.read"]
    [entry] = await eventually(read_by_comms, what="crm's read of the donor by service:comms")
    assert entry.actor_kind == "platform_service"
