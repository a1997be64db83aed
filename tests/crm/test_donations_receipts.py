"""Recurring gifts (next expected date, month-end clamp), list filters, receipts
(MarkReceiptsSent, GetReceiptSummary): contents, exclusions, all-or-nothing, bad input, tenancy."""

import uuid
from datetime import UTC, datetime

import grpc
import pytest
from givance.crm.v1 import donation_pb2, project_pb2
from givance.crm.v1 import donation_service_pb2 as dpb
from givance.crm.v1 import project_service_pb2 as ppb
from google.protobuf import field_mask_pb2, timestamp_pb2

from tests.helpers import day, fails, gift, invalid, new_donor, usd


async def _donor(stubs, tenant):
    return (await stubs.donors.CreateDonor(new_donor(), metadata=tenant.md)).donor


async def _gift(stubs, tenant, donor_id, amount=None, **kw):
    return (await stubs.donations.RecordDonation(gift(donor_id, amount or usd(100), **kw), metadata=tenant.md)).donation


def _d(d):
    return (d.year, d.month, d.day)


@pytest.mark.parametrize("when,frequency,expected", [
    ((2025, 1, 31), "monthly", (2025, 2, 28)),
    ((2024, 1, 31), "monthly", (2024, 2, 29)),
    ((2025, 3, 31), "monthly", (2025, 4, 30)),
    ((2025, 12, 15), "monthly", (2026, 1, 15)),
    ((2025, 11, 30), "quarterly", (2026, 2, 28)),
    ((2025, 8, 31), "semiannually", (2026, 2, 28)),
    ((2024, 2, 29), "annually", (2025, 2, 28)),
    ((2025, 12, 29), "weekly", (2026, 1, 5)),
])
async def test_recurring_gift_gets_its_next_expected_date(stubs, tenant, when, frequency, expected):
    donor = await _donor(stubs, tenant)
    g = await _gift(stubs, tenant, donor.id, date=day(*when), is_recurring=True, recurring_frequency=frequency)
    assert _d(g.next_expected_date) == expected
    listed = (await stubs.donations.ListDonations(dpb.ListDonationsRequest(donor_id=donor.id), metadata=tenant.md))
    assert _d(listed.donations[0].next_expected_date) == expected


async def test_one_off_gift_has_no_next_date_and_a_correction_recomputes_it(stubs, tenant):
    donor = await _donor(stubs, tenant)
    g = await _gift(stubs, tenant, donor.id, date=day(2026, 1, 31))
    assert not g.HasField("next_expected_date") and g.status == donation_pb2.DONATION_STATUS_RECORDED
    got = (await stubs.donations.UpdateDonation(dpb.UpdateDonationRequest(
        donation=donation_pb2.Donation(id=g.id, is_recurring=True, recurring_frequency="monthly"),
        update_mask=field_mask_pb2.FieldMask(paths=["is_recurring", "recurring_frequency"]), reason="monthly pledge"),
        metadata=tenant.md)).donation
    assert _d(got.next_expected_date) == (2026, 2, 28)
    off = (await stubs.donations.UpdateDonation(dpb.UpdateDonationRequest(
        donation=donation_pb2.Donation(id=g.id, is_recurring=False),
        update_mask=field_mask_pb2.FieldMask(paths=["is_recurring"]), reason="pledge ended"),
        metadata=tenant.md)).donation
    assert not off.HasField("next_expected_date") and off.recurring_frequency == ""


async def test_recurring_gift_without_frequency_is_invalid(stubs, tenant, admin_db):
    donor = await _donor(stubs, tenant)
    await invalid(stubs.donations.RecordDonation(gift(donor.id, is_recurring=True), metadata=tenant.md),
                  "donation.recurring_frequency")
    assert await admin_db.fetchval("SELECT count(*) FROM crm.donations WHERE organization_id = $1::uuid",
                                   tenant.org_id) == 0


async def test_list_filters_by_project_recurrence_and_dates(stubs, tenant):
    project = (await stubs.projects.CreateProject(ppb.CreateProjectRequest(project=project_pb2.Project(name="Well")),
                                                  metadata=tenant.md)).project
    donor = await _donor(stubs, tenant)
    await _gift(stubs, tenant, donor.id, usd(1), date=day(2026, 1, 5), project_id=project.id)
    await _gift(stubs, tenant, donor.id, usd(2), date=day(2026, 2, 5), is_recurring=True,
                recurring_frequency="monthly")
    await _gift(stubs, tenant, donor.id, usd(3), date=day(2026, 3, 5), is_recurring=True,
                recurring_frequency="weekly", project_id=project.id)

    async def amounts(**kw):
        page = await stubs.donations.ListDonations(dpb.ListDonationsRequest(**kw), metadata=tenant.md)
        return [d.amount.units for d in page.donations]

    assert await amounts(project_id=project.id) == [3, 1]
    assert await amounts(recurring_only=True) == [3, 2]
    assert await amounts(start_date=day(2026, 2, 5), end_date=day(2026, 3, 4)) == [2]
    assert await amounts(recurring_only=True, project_id=project.id) == [3]
    first = await stubs.donations.ListDonations(dpb.ListDonationsRequest(recurring_only=True, page_size=1),
                                                metadata=tenant.md)
    await invalid(stubs.donations.ListDonations(dpb.ListDonationsRequest(page_token=first.next_page_token),
                                                metadata=tenant.md), "page_token")
    await invalid(stubs.donations.ListDonations(dpb.ListDonationsRequest(project_id="nope"), metadata=tenant.md),
                  "project_id")
    await invalid(stubs.donations.ListDonations(dpb.ListDonationsRequest(start_date=day(2026, 3, 1),
                                                                         end_date=day(2026, 2, 1)),
                                                metadata=tenant.md), "end_date")
    await invalid(stubs.donations.ListDonations(dpb.ListDonationsRequest(start_date=day(2026, 2, 30)),
                                                metadata=tenant.md), "start_date")


def _ts(y, m, d):
    t = timestamp_pb2.Timestamp()
    t.FromDatetime(datetime(y, m, d, 12, tzinfo=UTC))
    return t


async def test_mark_receipts_sent_is_idempotent_and_keeps_the_first_time(stubs, tenant, admin_db):
    donor = await _donor(stubs, tenant)
    a, b = await _gift(stubs, tenant, donor.id), await _gift(stubs, tenant, donor.id)
    r = await stubs.donations.MarkReceiptsSent(dpb.MarkReceiptsSentRequest(donation_ids=[a.id],
                                                                           send_time=_ts(2026, 1, 2)),
                                               metadata=tenant.md)
    assert r.newly_marked_count == 1 and r.donations[0].receipt_sent
    r = await stubs.donations.MarkReceiptsSent(dpb.MarkReceiptsSentRequest(donation_ids=[a.id, b.id]),
                                               metadata=tenant.md)
    assert r.newly_marked_count == 1
    by_id = {d.id: d for d in r.donations}
    assert by_id[a.id].receipt_send_time.ToDatetime().date().isoformat() == "2026-01-02"
    assert by_id[b.id].receipt_sent and by_id[b.id].receipt_send_time.seconds > _ts(2026, 1, 2).seconds
    audited = await admin_db.fetchval("SELECT count(*) FROM crm.outbox WHERE aggregate_id = $1 "
                                      "AND routing_key = 'crm.audit.recorded'", a.id)
    assert audited == 2  # recorded, receipt marked once


async def _receipted(admin_db, org_id):
    return await admin_db.fetchval("SELECT count(*) FROM crm.donations WHERE organization_id = $1::uuid "
                                   "AND receipt_sent", org_id)


async def test_mark_receipts_is_all_or_nothing(stubs, tenant, other_tenant, admin_db):
    donor = await _donor(stubs, tenant)
    mine = await _gift(stubs, tenant, donor.id)
    theirs = await _gift(stubs, other_tenant, (await _donor(stubs, other_tenant)).id)
    for stranger in (theirs.id, str(uuid.uuid4())):
        await fails(stubs.donations.MarkReceiptsSent(dpb.MarkReceiptsSentRequest(donation_ids=[mine.id, stranger]),
                                                     metadata=tenant.md), grpc.StatusCode.NOT_FOUND)
    assert await _receipted(admin_db, tenant.org_id) == 0
    assert await _receipted(admin_db, other_tenant.org_id) == 0


@pytest.mark.parametrize("ids,field", [
    ([], "donation_ids"),
    (["nope"], "donation_ids[0]"),
    ([None, ""], "donation_ids[1]"),
    ([None] * 1001, "donation_ids"),
])
async def test_mark_receipts_bad_input(stubs, tenant, admin_db, ids, field):
    donor = await _donor(stubs, tenant)
    g = await _gift(stubs, tenant, donor.id)
    ids = [i if i is not None else g.id for i in ids]
    await invalid(stubs.donations.MarkReceiptsSent(dpb.MarkReceiptsSentRequest(donation_ids=ids), metadata=tenant.md),
                  field)
    assert await _receipted(admin_db, tenant.org_id) == 0


async def test_receipt_summary_lists_the_years_deductible_gifts_net_of_refunds(stubs, tenant):
    donor = await _donor(stubs, tenant)
    other = await _donor(stubs, tenant)
    a = await _gift(stubs, tenant, donor.id, usd(100), date=day(2025, 3, 1), reference_number="CHK-1",
                  tax_deductible=True)
    b = await _gift(stubs, tenant, donor.id, usd(50, 500_000_000), date=day(2025, 1, 15), tax_deductible=True)
    refunded = await _gift(stubs, tenant, donor.id, usd(70), date=day(2025, 6, 1), tax_deductible=True)
    await _gift(stubs, tenant, donor.id, usd(999), date=day(2025, 7, 1), tax_deductible=False)
    await _gift(stubs, tenant, donor.id, usd(888), date=day(2024, 12, 31), tax_deductible=True)
    await _gift(stubs, tenant, donor.id, usd(777), date=day(2026, 1, 1), tax_deductible=True)
    eur = await _gift(stubs, tenant, donor.id, usd(20, currency="EUR"), date=day(2025, 12, 31), tax_deductible=True)
    await _gift(stubs, tenant, other.id, usd(555), date=day(2025, 5, 5), tax_deductible=True)
    await stubs.donations.RefundDonation(dpb.RefundDonationRequest(donation_id=a.id, amount=usd(25), reason="r",
                                                                   refund_date=day(2026, 11, 2)),
                                         metadata=tenant.md)
    await stubs.donations.RefundDonation(dpb.RefundDonationRequest(donation_id=refunded.id, reason="r",
                                                                   refund_date=day(2026, 11, 2)),
                                         metadata=tenant.md)
    await stubs.donations.MarkReceiptsSent(dpb.MarkReceiptsSentRequest(donation_ids=[b.id]), metadata=tenant.md)

    s = await stubs.donations.GetReceiptSummary(dpb.GetReceiptSummaryRequest(donor_id=donor.id, year=2025),
                                                metadata=tenant.md)
    assert (s.donor_id, s.year) == (donor.id, 2025)
    got = {t.total.currency_code: t for t in s.totals}
    assert set(got) == {"EUR", "USD"}
    usd_total = got["USD"]
    assert (usd_total.total.units, usd_total.total.nanos, usd_total.gift_count) == (125, 500_000_000, 2)
    assert [(g.donation_id, _d(g.date), g.amount.units, g.amount.nanos, g.reference_number, g.receipt_sent)
            for g in usd_total.gifts] == [(b.id, (2025, 1, 15), 50, 500_000_000, "", True),
                                          (a.id, (2025, 3, 1), 75, 0, "CHK-1", False)]
    assert [g.donation_id for g in got["EUR"].gifts] == [eur.id] and got["EUR"].total.units == 20

    empty = await stubs.donations.GetReceiptSummary(dpb.GetReceiptSummaryRequest(donor_id=donor.id, year=2023),
                                                    metadata=tenant.md)
    assert list(empty.totals) == []


async def test_receipt_summary_bad_input_and_tenancy(stubs, tenant, other_tenant):
    donor = await _donor(stubs, tenant)
    await _gift(stubs, tenant, donor.id, date=day(2025, 3, 1))
    for request, field in ((dpb.GetReceiptSummaryRequest(donor_id=donor.id), "year"),
                           (dpb.GetReceiptSummaryRequest(donor_id=donor.id, year=10000), "year"),
                           (dpb.GetReceiptSummaryRequest(donor_id="nope", year=2025), "donor_id"),
                           (dpb.GetReceiptSummaryRequest(year=2025), "donor_id")):
        await invalid(stubs.donations.GetReceiptSummary(request, metadata=tenant.md), field)
    for donor_id in (donor.id, str(uuid.uuid4())):
        await fails(stubs.donations.GetReceiptSummary(dpb.GetReceiptSummaryRequest(donor_id=donor_id, year=2025),
                                                      metadata=other_tenant.md), grpc.StatusCode.NOT_FOUND)
    listed = await stubs.donations.ListDonations(dpb.ListDonationsRequest(donor_id=donor.id),
                                                 metadata=other_tenant.md)
    assert list(listed.donations) == []


async def test_tax_deductible_defaults_to_true_when_unset(stubs, tenant):
    donor = await _donor(stubs, tenant)
    unset = await _gift(stubs, tenant, donor.id, date=day(2025, 3, 1))
    assert unset.HasField("tax_deductible") and unset.tax_deductible
    explicit = await _gift(stubs, tenant, donor.id, date=day(2025, 3, 2), tax_deductible=False)
    assert explicit.HasField("tax_deductible") and not explicit.tax_deductible
    summary = await stubs.donations.GetReceiptSummary(dpb.GetReceiptSummaryRequest(donor_id=donor.id, year=2025),
                                                      metadata=tenant.md)
    assert [g.donation_id for t in summary.totals for g in t.gifts] == [unset.id]
