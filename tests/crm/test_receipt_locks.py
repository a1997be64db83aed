"""Tax receipts that lock gifts: numbers sequential per organization and year without gaps,
issued by MarkReceiptsSent; a correction of a receipted gift's amount, date, donor or
deductibility (or a refund) voids the receipt and issues a corrected one, crm.receipt.corrected;
no reason, nothing written; GetReceipt/ListReceipts, bad input, tenancy."""

import asyncio
import uuid

import grpc
import pytest
from givance.crm.v1 import donation_pb2, receipt_pb2, receipt_service_pb2, receipt_service_pb2_grpc
from givance.crm.v1 import donation_service_pb2 as dpb
from givance.crm.v1 import receipt_service_pb2 as rpb
from google.protobuf import field_mask_pb2

from services.crm.handlers.rollups import check_rollups
from tests.crm.every_rpc import EveryRpc
from tests.helpers import day, fails, gift, invalid, new_donor, usd

ISSUED, VOID = receipt_pb2.RECEIPT_STATUS_ISSUED, receipt_pb2.RECEIPT_STATUS_VOID


@pytest.fixture
def receipts(stubs):
    return receipt_service_pb2_grpc.ReceiptServiceStub(stubs.crm_channel)


async def _donor(stubs, tenant):
    return (await stubs.donors.CreateDonor(new_donor(), metadata=tenant.md)).donor


async def _gift(stubs, tenant, donor_id, amount=None, **kw):
    return (await stubs.donations.RecordDonation(gift(donor_id, amount or usd(100), **kw), metadata=tenant.md)).donation


async def _mark(stubs, tenant, *ids):
    return await stubs.donations.MarkReceiptsSent(dpb.MarkReceiptsSentRequest(donation_ids=list(ids)),
                                                  metadata=tenant.md)


def _correct(g, reason="fix", **fields):
    patch = donation_pb2.Donation(id=g.id, **fields)
    return dpb.UpdateDonationRequest(donation=patch, update_mask=field_mask_pb2.FieldMask(paths=list(fields)),
                                     reason=reason)


async def _of_gift(receipts, tenant, gift_id):
    return list((await receipts.ListReceipts(rpb.ListReceiptsRequest(donation_id=gift_id),
                                             metadata=tenant.md)).receipts)


async def test_numbers_run_per_year_without_gaps_and_only_for_deductible_gifts(stubs, receipts, tenant, other_tenant):
    donor = await _donor(stubs, tenant)
    a = await _gift(stubs, tenant, donor.id, date=day(2025, 3, 1))
    b = await _gift(stubs, tenant, donor.id, date=day(2025, 1, 5))
    c = await _gift(stubs, tenant, donor.id, date=day(2026, 2, 1))
    plain = await _gift(stubs, tenant, donor.id, date=day(2025, 4, 1), tax_deductible=False)
    marked = await _mark(stubs, tenant, a.id, b.id, c.id, plain.id)
    numbers = {d.id: d.receipt_number for d in marked.donations}
    # In gift-date order within a year; a year starts at 1; a non-deductible gift gets none.
    assert numbers == {b.id: "2025-000001", a.id: "2025-000002", c.id: "2026-000001", plain.id: ""}
    # Another organization numbers on its own.
    theirs = await _gift(stubs, other_tenant, (await _donor(stubs, other_tenant)).id, date=day(2025, 6, 1))
    assert (await _mark(stubs, other_tenant, theirs.id)).donations[0].receipt_number == "2025-000001"
    # Marking again issues nothing new; a failed mark (an unknown id) uses no number.
    await _mark(stubs, tenant, a.id)
    d = await _gift(stubs, tenant, donor.id, date=day(2025, 9, 1))
    await fails(_mark(stubs, tenant, d.id, str(uuid.uuid4())), grpc.StatusCode.NOT_FOUND)
    assert (await _mark(stubs, tenant, d.id)).donations[0].receipt_number == "2025-000003"
    # GetDonation and the receipt summary show the number.
    got = (await stubs.donations.GetDonation(dpb.GetDonationRequest(id=a.id), metadata=tenant.md)).donation
    assert got.receipt_number == "2025-000002"
    summary = await stubs.donations.GetReceiptSummary(dpb.GetReceiptSummaryRequest(donor_id=donor.id, year=2025),
                                                      metadata=tenant.md)
    assert [g.receipt_number for g in summary.totals[0].gifts] == ["2025-000001", "2025-000002", "2025-000003"]


async def test_concurrent_issuers_take_every_number_once(stubs, tenant):
    donor = await _donor(stubs, tenant)
    gifts = [await _gift(stubs, tenant, donor.id, date=day(2026, 1, i + 1)) for i in range(12)]
    results = await asyncio.gather(*(_mark(stubs, tenant, g.id) for g in gifts))
    numbers = sorted(r.donations[0].receipt_number for r in results)
    assert numbers == [f"2026-{i:06d}" for i in range(1, 13)]


async def test_a_correction_voids_the_receipt_and_issues_a_corrected_one(stubs, receipts, tenant, admin_db, crm_db):
    donor, other = await _donor(stubs, tenant), await _donor(stubs, tenant)
    g = await _gift(stubs, tenant, donor.id, usd(500), date=day(2026, 5, 1))
    await _mark(stubs, tenant, g.id)
    # Notes are not on the receipt: no new receipt.
    await stubs.donations.UpdateDonation(_correct(g, notes="thanked"), metadata=tenant.md)
    assert [r.number for r in await _of_gift(receipts, tenant, g.id)] == ["2026-000001"]

    fixed = (await stubs.donations.UpdateDonation(_correct(g, "check was for 600", amount=usd(600)),
                                                  metadata=tenant.md)).donation
    assert fixed.receipt_number == "2026-000002"
    new, old = await _of_gift(receipts, tenant, g.id)
    assert (new.status, new.amount.units, new.replaces_id) == (ISSUED, 600, old.id)
    assert (old.status, old.replaced_by_id, old.void_reason, old.amount.units) == (VOID, new.id,
                                                                                   "check was for 600", 500)
    events = await admin_db.fetch("SELECT body FROM crm.outbox WHERE tenant_id = $1::uuid "
                                  "AND routing_key = 'crm.receipt.corrected'", tenant.org_id)
    assert len(events) == 1

    # Date, donor, a refund, deductibility: each a corrected receipt (the last one: none, void).
    await stubs.donations.UpdateDonation(_correct(g, date=day(2026, 5, 2)), metadata=tenant.md)
    await stubs.donations.UpdateDonation(_correct(g, donor_id=other.id), metadata=tenant.md)
    await stubs.donations.RefundDonation(dpb.RefundDonationRequest(donation_id=g.id, amount=usd(100), reason="part",
                                                                   refund_date=day(2026, 6, 1)), metadata=tenant.md)
    live = [r for r in await _of_gift(receipts, tenant, g.id) if r.status == ISSUED]
    assert [(r.number, r.amount.units, r.donor_id) for r in live] == [("2026-000005", 500, other.id)]
    await stubs.donations.UpdateDonation(_correct(g, "not deductible", tax_deductible=False), metadata=tenant.md)
    every = await _of_gift(receipts, tenant, g.id)
    assert all(r.status == VOID for r in every) and len(every) == 5 and every[0].replaced_by_id == ""
    assert await admin_db.fetchval("SELECT count(*) FROM crm.outbox WHERE tenant_id = $1::uuid "
                                   "AND routing_key = 'crm.receipt.corrected'", tenant.org_id) == 5
    # Deductible again: a new receipt, replacing the last void one.
    again = (await stubs.donations.UpdateDonation(_correct(g, "deductible after all", tax_deductible=True),
                                                  metadata=tenant.md)).donation
    assert again.receipt_number == "2026-000006"
    assert await check_rollups(crm_db, uuid.UUID(tenant.org_id)) == []


async def test_a_receipted_gift_changes_only_with_a_reason(stubs, receipts, tenant, admin_db):
    donor = await _donor(stubs, tenant)
    g = await _gift(stubs, tenant, donor.id, usd(500), date=day(2026, 5, 1))
    etag = (await _mark(stubs, tenant, g.id)).donations[0].etag
    for reason in ("", "   "):
        await invalid(stubs.donations.UpdateDonation(_correct(g, reason, amount=usd(50)), metadata=tenant.md),
                      "reason")
    got = (await stubs.donations.GetDonation(dpb.GetDonationRequest(id=g.id), metadata=tenant.md)).donation
    assert got.amount.units == 500 and got.etag == etag
    assert await admin_db.fetchval("SELECT last_number FROM crm.receipt_counters WHERE organization_id = $1::uuid",
                                   tenant.org_id) == 1


async def test_bad_input_and_tenancy(stubs, receipts, tenant, other_tenant):
    donor = await _donor(stubs, tenant)
    g = await _gift(stubs, tenant, donor.id)
    r = (await _of_gift(receipts, tenant, g.id))
    assert r == []
    await _mark(stubs, tenant, g.id)
    mine = (await _of_gift(receipts, tenant, g.id))[0]
    for request, field in ((rpb.ListReceiptsRequest(donor_id="nope"), "donor_id"),
                           (rpb.ListReceiptsRequest(donation_id="nope"), "donation_id"),
                           (rpb.ListReceiptsRequest(year=100000), "year"),
                           (rpb.ListReceiptsRequest(page_size=-1), "page_size")):
        await invalid(receipts.ListReceipts(request, metadata=tenant.md), field)
    await invalid(receipts.GetReceipt(rpb.GetReceiptRequest(id="nope"), metadata=tenant.md), "id")

    every = EveryRpc(receipts, receipt_service_pb2, "ReceiptService")
    await fails(every.GetReceipt(rpb.GetReceiptRequest(id=mine.id), metadata=other_tenant.md),
                grpc.StatusCode.NOT_FOUND)
    for request in (rpb.ListReceiptsRequest(), rpb.ListReceiptsRequest(donor_id=donor.id),
                    rpb.ListReceiptsRequest(donation_id=g.id)):
        assert list((await every.ListReceipts(request, metadata=other_tenant.md)).receipts) == []
    assert every.uncalled() == set()
    got = await receipts.GetReceipt(rpb.GetReceiptRequest(id=mine.id), metadata=tenant.md)
    assert (got.receipt.number, got.receipt.donor_id, got.receipt.status) == (mine.number, donor.id, ISSUED)
