"""Pledges: a schedule of installments, gifts applied to it, balance and status (open,
fulfilled, reopened by a refund, written off with a reason), crm.pledge.* events, pledged versus
received in GetGivingSummary, the rollup check; bad input by field; tenancy."""

import uuid

import grpc
import pytest
from givance.crm.v1 import (
    donation_pb2,
    gift_batch_pb2,
    gift_batch_service_pb2_grpc,
    insight_pb2,
    pledge_pb2,
    pledge_service_pb2,
    pledge_service_pb2_grpc,
    receipt_service_pb2_grpc,
)
from givance.crm.v1 import donation_service_pb2 as dpb
from givance.crm.v1 import donor_service_pb2 as pb
from givance.crm.v1 import gift_batch_service_pb2 as bpb
from givance.crm.v1 import insight_service_pb2 as ipb
from givance.crm.v1 import pledge_service_pb2 as ppb
from givance.crm.v1 import receipt_service_pb2 as rpb
from google.protobuf import field_mask_pb2

from services.crm.handlers.rollups import check_rollups
from tests.crm.every_rpc import EveryRpc
from tests.helpers import day, error_reason, fails, gift, invalid, new_donor, usd

MONTHLY = pledge_pb2.PLEDGE_FREQUENCY_MONTHLY
OPEN, FULFILLED, WRITTEN_OFF = (pledge_pb2.PLEDGE_STATUS_OPEN, pledge_pb2.PLEDGE_STATUS_FULFILLED,
                                pledge_pb2.PLEDGE_STATUS_WRITTEN_OFF)


@pytest.fixture
def pledges(stubs):
    return pledge_service_pb2_grpc.PledgeServiceStub(stubs.crm_channel)


async def _donor(stubs, tenant):
    return (await stubs.donors.CreateDonor(new_donor(), metadata=tenant.md)).donor


async def _pledge(pledges, tenant, donor_id, amount, count=3, **kw):
    kw.setdefault("start_date", day(2026, 1, 31))
    return (await pledges.CreatePledge(ppb.CreatePledgeRequest(pledge=pledge_pb2.Pledge(
        donor_id=donor_id, amount=amount, frequency=MONTHLY, installment_count=count, **kw)),
        metadata=tenant.md)).pledge


async def _pay(stubs, tenant, donor_id, pledge_id, amount, when=day(2026, 2, 1)):
    return (await stubs.donations.RecordDonation(gift(donor_id, amount, pledge_id=pledge_id, date=when),
                                                 metadata=tenant.md)).donation


async def _get(pledges, tenant, pledge_id):
    return (await pledges.GetPledge(ppb.GetPledgeRequest(id=pledge_id), metadata=tenant.md)).pledge


def _units(m):
    return f"{m.units}.{m.nanos // 10_000_000:02d}"


async def _events(admin_db, tenant):
    rows = await admin_db.fetch("SELECT routing_key FROM crm.outbox WHERE tenant_id = $1::uuid "
                                "AND routing_key LIKE 'crm.pledge.%' ORDER BY id", tenant.org_id)
    return [r["routing_key"].removeprefix("crm.pledge.") for r in rows]


async def test_payments_fill_the_schedule_and_a_refund_reopens(stubs, pledges, tenant, admin_db, crm_db):
    donor = await _donor(stubs, tenant)
    p = await _pledge(pledges, tenant, donor.id, usd(1000), notes="three payments")
    assert [(_units(i.amount), (i.due_date.month, i.due_date.day)) for i in p.installments] == [
        ("333.34", (1, 31)), ("333.33", (2, 28)), ("333.33", (3, 31))]  # cents to the first; month ends clamp
    assert (p.status, _units(p.balance), p.payment_count) == (OPEN, "1000.00", 0)

    first = await _pay(stubs, tenant, donor.id, p.id, usd(400))
    assert first.pledge_id == p.id
    p = await _get(pledges, tenant, p.id)
    assert (_units(p.received_amount), _units(p.balance), p.payment_count) == ("400.00", "600.00", 1)
    assert [_units(i.paid_amount) for i in p.installments] == ["333.34", "66.66", "0.00"]
    assert all(i.overdue for i in p.installments[1:])  # due dates passed, not paid

    second = await _pay(stubs, tenant, donor.id, p.id, usd(600), day(2026, 3, 1))
    p = await _get(pledges, tenant, p.id)
    assert (p.status, _units(p.balance)) == (FULFILLED, "0.00")
    await stubs.donations.RefundDonation(dpb.RefundDonationRequest(donation_id=second.id, amount=usd(50),
                                                                   reason="bounced", refund_date=day(2026, 3, 2)),
                                         metadata=tenant.md)
    p = await _get(pledges, tenant, p.id)
    assert (p.status, _units(p.received_amount)) == (OPEN, "950.00")
    await stubs.donations.UpdateDonation(dpb.UpdateDonationRequest(
        donation=donation_pb2.Donation(id=first.id, amount=usd(450)),
        update_mask=field_mask_pb2.FieldMask(paths=["amount"]), reason="was 450"), metadata=tenant.md)
    assert (await _get(pledges, tenant, p.id)).status == FULFILLED
    assert await _events(admin_db, tenant) == ["created", "payment_applied", "payment_applied", "fulfilled",
                                               "reopened", "fulfilled"]
    assert await check_rollups(crm_db, uuid.UUID(tenant.org_id)) == []

    # Pledged versus received, per period.
    summary = await stubs.insight.GetGivingSummary(ipb.GetGivingSummaryRequest(
        period=insight_pb2.SUMMARY_PERIOD_MONTH, start_date=day(2026, 1, 1), end_date=day(2026, 3, 31)),
        metadata=tenant.md)
    assert [(_units(x.pledged_amount), x.pledge_count, _units(x.pledge_received_amount))
            for x in summary.periods] == [("1000.00", 1, "0.00"), ("0.00", 0, "450.00"), ("0.00", 0, "550.00")]


async def test_write_off_needs_a_reason_and_closes_the_pledge(stubs, pledges, tenant, admin_db, crm_db):
    donor = await _donor(stubs, tenant)
    p = await _pledge(pledges, tenant, donor.id, usd(300))
    await _pay(stubs, tenant, donor.id, p.id, usd(100))
    await invalid(pledges.WriteOffPledge(ppb.WriteOffPledgeRequest(id=p.id, reason=" "), metadata=tenant.md), "reason")
    await fails(pledges.WriteOffPledge(ppb.WriteOffPledgeRequest(id=p.id, reason="x", etag=p.etag),
                                       metadata=tenant.md), grpc.StatusCode.ABORTED)  # a payment changed it
    done = (await pledges.WriteOffPledge(ppb.WriteOffPledgeRequest(id=p.id, reason="moved away"),
                                         metadata=tenant.md)).pledge
    assert (done.status, _units(done.written_off_amount), done.write_off_reason, _units(done.balance)) == (
        WRITTEN_OFF, "200.00", "moved away", "0.00")
    err = await fails(_pay(stubs, tenant, donor.id, p.id, usd(10)), grpc.StatusCode.FAILED_PRECONDITION)
    assert error_reason(err) == "PLEDGE_WRITTEN_OFF"
    err = await fails(pledges.WriteOffPledge(ppb.WriteOffPledgeRequest(id=p.id, reason="again"), metadata=tenant.md),
                      grpc.StatusCode.FAILED_PRECONDITION)
    assert error_reason(err) == "PLEDGE_NOT_OPEN"
    listed = await pledges.ListPledges(ppb.ListPledgesRequest(status=WRITTEN_OFF), metadata=tenant.md)
    assert [x.id for x in listed.pledges] == [p.id]
    assert "written_off" in await _events(admin_db, tenant)
    assert await check_rollups(crm_db, uuid.UUID(tenant.org_id)) == []


async def test_a_payment_must_fit_its_pledge(stubs, pledges, tenant, admin_db):
    donor, other = await _donor(stubs, tenant), await _donor(stubs, tenant)
    p = await _pledge(pledges, tenant, donor.id, usd(300))
    await invalid(_pay(stubs, tenant, other.id, p.id, usd(10)), "donation.pledge_id")
    await invalid(_pay(stubs, tenant, donor.id, p.id, usd(10, currency="EUR")), "donation.pledge_id")
    await invalid(_pay(stubs, tenant, donor.id, str(uuid.uuid4()), usd(10)), "donation.pledge_id")
    await invalid(_pay(stubs, tenant, donor.id, "nope", usd(10)), "donation.pledge_id")
    assert await admin_db.fetchval("SELECT count(*) FROM crm.donations WHERE organization_id = $1::uuid",
                                   tenant.org_id) == 0
    paid = await _pay(stubs, tenant, donor.id, p.id, usd(10))
    err = await fails(stubs.donations.UpdateDonation(dpb.UpdateDonationRequest(
        donation=donation_pb2.Donation(id=paid.id, donor_id=other.id),
        update_mask=field_mask_pb2.FieldMask(paths=["donor_id"]), reason="moved"), metadata=tenant.md),
        grpc.StatusCode.FAILED_PRECONDITION)
    assert error_reason(err) == "PLEDGE_PAYMENT"


@pytest.mark.parametrize("pledge,field", [
    (dict(amount=usd(0)), "pledge.amount"),
    (dict(amount=usd(10, 5_000_000)), "pledge.amount"),
    (dict(amount=usd(10, currency="us")), "pledge.amount.currency_code"),
    (dict(start_date=None), "pledge.start_date"),
    (dict(installment_count=601), "pledge.installment_count"),
    (dict(frequency=pledge_pb2.PLEDGE_FREQUENCY_ONCE, installment_count=2), "pledge.installment_count"),
    (dict(amount=usd(0, 10_000_000), installment_count=2), "pledge.installment_count"),
    (dict(donor_id="nope"), "pledge.donor_id"),
    (dict(donor_id=str(uuid.uuid4())), "pledge.donor_id"),
    (dict(notes="x" * 10_001), "pledge.notes"),
])
async def test_bad_pledges_are_named_by_field(stubs, pledges, tenant, admin_db, pledge, field):
    donor = await _donor(stubs, tenant)
    values = dict(donor_id=donor.id, amount=usd(100), start_date=day(2026, 1, 1), frequency=MONTHLY,
                  installment_count=2)
    values.update(pledge)
    values = {k: v for k, v in values.items() if v is not None}
    await invalid(pledges.CreatePledge(ppb.CreatePledgeRequest(pledge=pledge_pb2.Pledge(**values)),
                                       metadata=tenant.md), field)
    assert await admin_db.fetchval("SELECT count(*) FROM crm.pledges WHERE organization_id = $1::uuid",
                                   tenant.org_id) == 0


async def test_another_tenants_pledge_is_not_found(stubs, pledges, tenant, other_tenant):
    donor = await _donor(stubs, tenant)
    p = (await pledges.CreatePledge(ppb.CreatePledgeRequest(pledge=pledge_pb2.Pledge(
        donor_id=donor.id, amount=usd(100), start_date=day(2026, 1, 1)), request_id="p-1"), metadata=tenant.md)).pledge
    again = (await pledges.CreatePledge(ppb.CreatePledgeRequest(pledge=pledge_pb2.Pledge(
        donor_id=donor.id, amount=usd(100), start_date=day(2026, 1, 1)), request_id="p-1"), metadata=tenant.md)).pledge
    assert again.id == p.id and p.frequency == pledge_pb2.PLEDGE_FREQUENCY_ONCE and len(p.installments) == 1
    every = EveryRpc(pledges, pledge_service_pb2, "PledgeService")
    await fails(every.GetPledge(ppb.GetPledgeRequest(id=p.id), metadata=other_tenant.md), grpc.StatusCode.NOT_FOUND)
    await fails(every.WriteOffPledge(ppb.WriteOffPledgeRequest(id=p.id, reason="x"), metadata=other_tenant.md),
                grpc.StatusCode.NOT_FOUND)
    listed = await every.ListPledges(ppb.ListPledgesRequest(donor_id=donor.id), metadata=other_tenant.md)
    assert list(listed.pledges) == []
    await invalid(every.CreatePledge(ppb.CreatePledgeRequest(pledge=pledge_pb2.Pledge(
        donor_id=donor.id, amount=usd(100), start_date=day(2026, 1, 1))), metadata=other_tenant.md),
        "pledge.donor_id")
    assert every.uncalled() == set()
    await invalid(_pay(stubs, other_tenant, (await _donor(stubs, other_tenant)).id, p.id, usd(5)),
                  "donation.pledge_id")


async def test_a_batch_gift_pays_a_pledge_when_the_batch_posts(stubs, pledges, tenant, crm_db):
    batches = gift_batch_service_pb2_grpc.GiftBatchServiceStub(stubs.crm_channel)
    donor = await _donor(stubs, tenant)
    p = await _pledge(pledges, tenant, donor.id, usd(100), count=1)
    batch = (await batches.CreateGiftBatch(bpb.CreateGiftBatchRequest(batch=gift_batch_pb2.GiftBatch(
        name="deposit", expected_count=1, expected_total=usd(100))), metadata=tenant.md)).batch

    def entry(pledge_id):
        return bpb.AddBatchGiftRequest(batch_id=batch.id, gift=gift_batch_pb2.BatchGift(donation=donation_pb2.Donation(
            donor_id=donor.id, amount=usd(100), date=day(2026, 2, 1), pledge_id=pledge_id)))
    await invalid(batches.AddBatchGift(entry(str(uuid.uuid4())), metadata=tenant.md), "donation.pledge_id")
    added = await batches.AddBatchGift(entry(p.id), metadata=tenant.md)
    assert added.gift.donation.pledge_id == p.id
    assert (await _get(pledges, tenant, p.id)).payment_count == 0  # not before the batch posts
    await batches.PostGiftBatch(bpb.PostGiftBatchRequest(id=batch.id), metadata=tenant.md)
    got = await _get(pledges, tenant, p.id)
    assert (got.status, got.payment_count) == (FULFILLED, 1)
    assert await check_rollups(crm_db, uuid.UUID(tenant.org_id)) == []


async def test_a_merge_moves_pledges_and_receipts_to_the_survivor(stubs, pledges, tenant, crm_db):
    receipts = receipt_service_pb2_grpc.ReceiptServiceStub(stubs.crm_channel)
    survivor, merged = await _donor(stubs, tenant), await _donor(stubs, tenant)
    p = await _pledge(pledges, tenant, merged.id, usd(200), count=2)
    paid = await _pay(stubs, tenant, merged.id, p.id, usd(100))
    await stubs.donations.MarkReceiptsSent(dpb.MarkReceiptsSentRequest(donation_ids=[paid.id]), metadata=tenant.md)
    await stubs.donors.MergeDonors(pb.MergeDonorsRequest(survivor_id=survivor.id, merged_id=merged.id),
                                   metadata=tenant.md)
    assert (await _get(pledges, tenant, p.id)).donor_id == survivor.id
    moved = await receipts.ListReceipts(rpb.ListReceiptsRequest(donor_id=survivor.id), metadata=tenant.md)
    assert [r.donation_id for r in moved.receipts] == [paid.id]
    await _pay(stubs, tenant, survivor.id, p.id, usd(100))  # the survivor pays the rest
    assert (await _get(pledges, tenant, p.id)).status == FULFILLED
    assert await check_rollups(crm_db, uuid.UUID(tenant.org_id)) == []
