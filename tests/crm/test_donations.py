import asyncio
import uuid

import grpc
from givance.crm.v1 import donation_service_pb2 as dpb
from givance.crm.v1 import donor_service_pb2 as pb

from tests.helpers import day, fails, gift, new_donor, usd


async def _donor(stubs, tenant):
    return (await stubs.donors.CreateDonor(new_donor(), metadata=tenant.md)).donor


def _totals(donor):
    return {t.lifetime_amount.currency_code: t for t in donor.giving_totals}


async def test_recording_gifts_keeps_totals_per_currency(stubs, tenant):
    donor = await _donor(stubs, tenant)
    await stubs.donations.RecordDonation(gift(donor.id, usd(100, 250_000_000), date=day(2025, 3, 1)),
                                         metadata=tenant.md)
    await stubs.donations.RecordDonation(gift(donor.id, usd(0, 990_000_000), date=day(2026, 1, 9)),
                                         metadata=tenant.md)
    await stubs.donations.RecordDonation(gift(donor.id, usd(40, currency="EUR"), date=day(2024, 12, 31)),
                                         metadata=tenant.md)
    got = (await stubs.donors.GetDonor(pb.GetDonorRequest(id=donor.id), metadata=tenant.md)).donor
    t = _totals(got)
    assert (t["USD"].lifetime_amount.units, t["USD"].lifetime_amount.nanos) == (101, 240_000_000)
    assert t["USD"].donation_count == 2
    assert (t["USD"].first_gift_date.year, t["USD"].last_gift_date.year) == (2025, 2026)
    assert (t["EUR"].lifetime_amount.units, t["EUR"].donation_count) == (40, 1)


async def test_concurrent_gifts_all_count(stubs, tenant):
    donor = await _donor(stubs, tenant)
    await asyncio.gather(*[stubs.donations.RecordDonation(gift(donor.id, usd(1, 10_000_000)), metadata=tenant.md)
                           for _ in range(20)])
    t = _totals((await stubs.donors.GetDonor(pb.GetDonorRequest(id=donor.id), metadata=tenant.md)).donor)["USD"]
    assert t.donation_count == 20 and (t.lifetime_amount.units, t.lifetime_amount.nanos) == (20, 200_000_000)


async def test_retried_record_with_request_id_counts_once(stubs, tenant, admin_db):
    donor = await _donor(stubs, tenant)
    rid = uuid.uuid4().hex
    first = (await stubs.donations.RecordDonation(gift(donor.id, usd(50), request_id=rid), metadata=tenant.md))
    again = (await stubs.donations.RecordDonation(gift(donor.id, usd(50), request_id=rid), metadata=tenant.md))
    assert first.donation.id == again.donation.id
    t = _totals((await stubs.donors.GetDonor(pb.GetDonorRequest(id=donor.id), metadata=tenant.md)).donor)["USD"]
    assert t.donation_count == 1
    events = await admin_db.fetchval("SELECT count(*) FROM crm.outbox WHERE aggregate_id = $1 "
                                     "AND routing_key = 'crm.donation.recorded'", donor.id)
    assert events == 1
    audited = await admin_db.fetchval("SELECT count(*) FROM crm.outbox WHERE aggregate_id = $1 "
                                      "AND routing_key = 'crm.audit.recorded'", first.donation.id)
    assert audited == 1  # the retry recorded nothing, so it audited nothing either


async def test_each_recorded_gift_writes_one_outbox_event_in_its_transaction(stubs, tenant, admin_db):
    donor = await _donor(stubs, tenant)
    d = (await stubs.donations.RecordDonation(gift(donor.id), metadata=tenant.md)).donation
    row = await admin_db.fetchrow("SELECT routing_key, tenant_id FROM crm.outbox WHERE aggregate_id = $1 "
                                  "AND routing_key NOT IN ('crm.audit.recorded', 'crm.donor.created')", donor.id)
    assert row["routing_key"] == "crm.donation.recorded" and str(row["tenant_id"]) == tenant.org_id
    assert d.amount.units == 100 and d.donor_id == donor.id


async def test_gift_for_deleted_or_unknown_donor_is_not_found(stubs, tenant):
    donor = await _donor(stubs, tenant)
    await stubs.donors.DeleteDonor(pb.DeleteDonorRequest(id=donor.id), metadata=tenant.md)
    for donor_id in (donor.id, str(uuid.uuid4())):
        await fails(stubs.donations.RecordDonation(gift(donor_id), metadata=tenant.md), grpc.StatusCode.NOT_FOUND)


async def test_list_donations_by_donor_newest_first_in_pages(stubs, tenant):
    donor = await _donor(stubs, tenant)
    other = await _donor(stubs, tenant)
    for i in range(1, 6):
        await stubs.donations.RecordDonation(gift(donor.id, usd(i), date=day(2026, 1, i)), metadata=tenant.md)
    await stubs.donations.RecordDonation(gift(other.id, usd(99)), metadata=tenant.md)
    seen, token = [], ""
    while True:
        page = await stubs.donations.ListDonations(
            dpb.ListDonationsRequest(donor_id=donor.id, page_size=2, page_token=token), metadata=tenant.md)
        seen += [d.amount.units for d in page.donations]
        token = page.next_page_token
        if not token:
            break
    assert seen == [5, 4, 3, 2, 1]
