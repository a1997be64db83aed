"""The communications log: staff log contacts, comms logs its sends; crm's last_contact_time follows."""

from __future__ import annotations

import datetime as dt

from givance.comms.v1 import communication_pb2, message_pb2
from givance.comms.v1 import communication_service_pb2 as cpb
from givance.comms.v1 import message_service_pb2 as mpb
from givance.crm.v1 import donor_service_pb2 as dpb
from google.protobuf import timestamp_pb2

from tests.helpers import eventually, invalid, new_donor


def _ts(when: dt.datetime) -> timestamp_pb2.Timestamp:
    t = timestamp_pb2.Timestamp()
    t.FromDatetime(when)
    return t


async def test_logged_contacts_list_by_donor_channel_and_date_and_crm_keeps_last_contact(stubs, tenant, mailbox):
    md = tenant.md
    donor = (await stubs.donors.CreateDonor(new_donor(email="ada.log@example.org"), metadata=md)).donor
    other = (await stubs.donors.CreateDonor(new_donor(first_name="Bob"), metadata=md)).donor
    base = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
    logged = []
    for i, channel in enumerate([message_pb2.CHANNEL_PHONE, message_pb2.CHANNEL_MEETING, message_pb2.CHANNEL_LETTER]):
        logged.append((await stubs.communications.LogCommunication(cpb.LogCommunicationRequest(
            communication=communication_pb2.Communication(
                donor_id=donor.id, channel=channel, direction=communication_pb2.DIRECTION_OUTBOUND,
                subject=f"contact {i}", occur_time=_ts(base + dt.timedelta(days=i))),
            request_id=f"log-{i}"), metadata=md)).communication)
    again = (await stubs.communications.LogCommunication(cpb.LogCommunicationRequest(
        communication=communication_pb2.Communication(donor_id=donor.id, channel=message_pb2.CHANNEL_PHONE,
                                                      direction=communication_pb2.DIRECTION_OUTBOUND),
        request_id="log-0"), metadata=md)).communication
    assert again.id == logged[0].id and logged[0].logged_by == tenant.user_id
    await stubs.communications.LogCommunication(cpb.LogCommunicationRequest(
        communication=communication_pb2.Communication(donor_id=other.id, channel=message_pb2.CHANNEL_PHONE,
                                                      direction=communication_pb2.DIRECTION_INBOUND)), metadata=md)

    # paged, newest first, by donor
    page1 = await stubs.communications.ListCommunications(cpb.ListCommunicationsRequest(
        donor_id=donor.id, page_size=2), metadata=md)
    page2 = await stubs.communications.ListCommunications(cpb.ListCommunicationsRequest(
        donor_id=donor.id, page_size=2, page_token=page1.next_page_token), metadata=md)
    assert [c.subject for c in page1.communications] == ["contact 2", "contact 1"]
    assert [c.subject for c in page2.communications] == ["contact 0"] and page2.next_page_token == ""
    by_channel = await stubs.communications.ListCommunications(cpb.ListCommunicationsRequest(
        donor_id=donor.id, channel=message_pb2.CHANNEL_MEETING), metadata=md)
    assert [c.subject for c in by_channel.communications] == ["contact 1"]
    window = await stubs.communications.ListCommunications(cpb.ListCommunicationsRequest(
        donor_id=donor.id, occur_after=_ts(base), occur_before=_ts(base + dt.timedelta(days=2))), metadata=md)
    assert [c.subject for c in window.communications] == ["contact 1", "contact 0"]
    await invalid(stubs.communications.ListCommunications(cpb.ListCommunicationsRequest(
        donor_id=donor.id, channel=message_pb2.CHANNEL_PHONE, page_token=page1.next_page_token), metadata=md),
        "page_token")

    # crm follows: the latest contact
    async def last_contact():
        d = (await stubs.donors.GetDonor(dpb.GetDonorRequest(id=donor.id), metadata=md)).donor
        return d.last_contact_time.ToDatetime(tzinfo=dt.UTC) == base + dt.timedelta(days=2) and d
    before = await eventually(last_contact, what="crm's last_contact_time")

    # a send to the donor is logged by comms itself and moves last contact to now
    sent = (await stubs.messages.SendMessage(mpb.SendMessageRequest(
        donor_id=donor.id, template_name="thank-you", variables={"amount": "$10", "date": "today"}),
        metadata=md)).message
    await mailbox.wait_for("ada.log@example.org")

    async def own_log():
        got = (await stubs.communications.ListCommunications(cpb.ListCommunicationsRequest(
            donor_id=donor.id, channel=message_pb2.CHANNEL_EMAIL), metadata=md)).communications
        return got and got[0]
    mine = await eventually(own_log)
    assert mine.message_id == sent.id and mine.logged_by == "" and mine.subject == "Thank you, Ada"

    async def moved():
        d = (await stubs.donors.GetDonor(dpb.GetDonorRequest(id=donor.id), metadata=md)).donor
        return d.last_contact_time.ToDatetime(tzinfo=dt.UTC) > base + dt.timedelta(days=2) and d
    after = await eventually(moved)
    assert after.etag == before.etag  # a contact is not an edit of the donor


async def test_bad_log_input_is_invalid_argument(stubs, tenant):
    md = tenant.md
    donor = (await stubs.donors.CreateDonor(new_donor(), metadata=md)).donor
    await invalid(stubs.communications.LogCommunication(cpb.LogCommunicationRequest(
        communication=communication_pb2.Communication(donor_id=donor.id,
                                                      direction=communication_pb2.DIRECTION_INBOUND)), metadata=md),
        "communication.channel")
    await invalid(stubs.communications.LogCommunication(cpb.LogCommunicationRequest(
        communication=communication_pb2.Communication(donor_id="nope", channel=message_pb2.CHANNEL_PHONE,
                                                      direction=communication_pb2.DIRECTION_INBOUND)), metadata=md),
        "communication.donor_id")
    await invalid(stubs.communications.LogCommunication(cpb.LogCommunicationRequest(
        communication=communication_pb2.Communication(donor_id=donor.id, channel=message_pb2.CHANNEL_PHONE,
                                                      direction=communication_pb2.DIRECTION_INBOUND,
                                                      content="x" * (64 * 1024 + 1))), metadata=md),
        "communication.content")
