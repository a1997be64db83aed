"""Gift batches: entered count and total, open/balanced/posted, posting all or none, an
unbalanced batch cannot post, crm.batch.posted, bad input by field, tenancy."""

import grpc
import pytest
from givance.crm.v1 import donation_pb2, gift_batch_pb2, gift_batch_service_pb2_grpc
from givance.crm.v1 import donation_service_pb2 as dpb
from givance.crm.v1 import donor_service_pb2 as pb
from givance.crm.v1 import gift_batch_service_pb2 as bpb

from tests.helpers import day, error_reason, fails, invalid, new_donor, usd


@pytest.fixture
def batches(stubs):
    return gift_batch_service_pb2_grpc.GiftBatchServiceStub(stubs.crm_channel)


async def _batch(batches, tenant, count, total):
    return (await batches.CreateGiftBatch(bpb.CreateGiftBatchRequest(batch=gift_batch_pb2.GiftBatch(
        name="Deposit 2026-11-30", expected_count=count, expected_total=total)), metadata=tenant.md)).batch


def _entry(batch_id, donor_id, amount):
    return bpb.AddBatchGiftRequest(batch_id=batch_id, gift=gift_batch_pb2.BatchGift(donation=donation_pb2.Donation(
        donor_id=donor_id, amount=amount, date=day(2026, 11, 30), payment_method=donation_pb2.PAYMENT_METHOD_CHECK)))


async def _gifts(stubs, tenant, donor_id):
    return list((await stubs.donations.ListDonations(dpb.ListDonationsRequest(donor_id=donor_id),
                                                     metadata=tenant.md)).donations)


async def test_a_balanced_batch_posts_every_gift_at_once(stubs, batches, tenant, admin_db):
    a, b = [(await stubs.donors.CreateDonor(new_donor(first_name=n), metadata=tenant.md)).donor.id for n in "AB"]
    batch = await _batch(batches, tenant, 2, usd(150))
    assert batch.status == gift_batch_pb2.GIFT_BATCH_STATUS_OPEN
    first = await batches.AddBatchGift(_entry(batch.id, a, usd(100)), metadata=tenant.md)
    assert (first.batch.entered_count, first.batch.entered_total.units) == (1, 100)
    # Unbalanced: refused, nothing recorded.
    err = await fails(batches.PostGiftBatch(bpb.PostGiftBatchRequest(id=batch.id), metadata=tenant.md),
                      grpc.StatusCode.FAILED_PRECONDITION)
    assert error_reason(err) == "BATCH_UNBALANCED"
    second = await batches.AddBatchGift(_entry(batch.id, b, usd(50)), metadata=tenant.md)
    assert second.batch.status == gift_batch_pb2.GIFT_BATCH_STATUS_BALANCED
    assert await _gifts(stubs, tenant, a) == []
    posted = (await batches.PostGiftBatch(bpb.PostGiftBatchRequest(id=batch.id, etag=second.batch.etag),
                                          metadata=tenant.md)).batch
    assert posted.status == gift_batch_pb2.GIFT_BATCH_STATUS_POSTED and posted.HasField("post_time")
    assert [g.amount.units for g in await _gifts(stubs, tenant, a)] == [100]
    entered = (await batches.ListBatchGifts(bpb.ListBatchGiftsRequest(batch_id=batch.id), metadata=tenant.md)).gifts
    assert [bool(g.donation_id) for g in entered] == [True, True]
    donor = (await stubs.donors.GetDonor(pb.GetDonorRequest(id=b), metadata=tenant.md)).donor
    assert donor.giving_totals[0].lifetime_amount.units == 50
    assert await admin_db.fetchval("SELECT count(*) FROM crm.outbox WHERE tenant_id = $1::uuid "
                                   "AND routing_key = 'crm.batch.posted'", tenant.org_id) == 1
    err = await fails(batches.AddBatchGift(_entry(batch.id, a, usd(1)), metadata=tenant.md),
                      grpc.StatusCode.FAILED_PRECONDITION)
    assert error_reason(err) == "BATCH_POSTED"
    await fails(batches.PostGiftBatch(bpb.PostGiftBatchRequest(id=batch.id), metadata=tenant.md),
                grpc.StatusCode.FAILED_PRECONDITION)


async def test_posting_is_all_or_none(stubs, batches, tenant):
    a, b = [(await stubs.donors.CreateDonor(new_donor(first_name=n), metadata=tenant.md)).donor.id for n in "AB"]
    batch = await _batch(batches, tenant, 2, usd(30))
    await batches.AddBatchGift(_entry(batch.id, a, usd(10)), metadata=tenant.md)
    await batches.AddBatchGift(_entry(batch.id, b, usd(20)), metadata=tenant.md)
    await stubs.donors.DeleteDonor(pb.DeleteDonorRequest(id=b), metadata=tenant.md)  # the second gift cannot record
    await fails(batches.PostGiftBatch(bpb.PostGiftBatchRequest(id=batch.id), metadata=tenant.md),
                grpc.StatusCode.NOT_FOUND)
    assert await _gifts(stubs, tenant, a) == []  # the first gift was not recorded either
    again = (await batches.GetGiftBatch(bpb.GetGiftBatchRequest(id=batch.id), metadata=tenant.md)).batch
    assert again.status == gift_batch_pb2.GIFT_BATCH_STATUS_BALANCED
    # Remove the gift that cannot record: unbalanced now.
    gifts = (await batches.ListBatchGifts(bpb.ListBatchGiftsRequest(batch_id=batch.id), metadata=tenant.md)).gifts
    r = await batches.RemoveBatchGift(bpb.RemoveBatchGiftRequest(batch_id=batch.id, gift_id=gifts[1].id),
                                      metadata=tenant.md)
    assert (r.batch.entered_count, r.batch.status) == (1, gift_batch_pb2.GIFT_BATCH_STATUS_OPEN)


async def test_bad_input_is_named_by_field(stubs, batches, tenant, other_tenant):
    mine = (await stubs.donors.CreateDonor(new_donor(), metadata=tenant.md)).donor.id
    theirs = (await stubs.donors.CreateDonor(new_donor(), metadata=other_tenant.md)).donor.id
    for batch, field in [(gift_batch_pb2.GiftBatch(name="", expected_total=usd(1)), "batch.name"),
                         (gift_batch_pb2.GiftBatch(name="x", expected_count=-1, expected_total=usd(1)),
                          "batch.expected_count"),
                         (gift_batch_pb2.GiftBatch(name="x"), "batch.expected_total"),
                         (gift_batch_pb2.GiftBatch(name="x", expected_total=usd(1, currency="us")),
                          "batch.expected_total.currency_code")]:
        await invalid(batches.CreateGiftBatch(bpb.CreateGiftBatchRequest(batch=batch), metadata=tenant.md), field)
    batch = await _batch(batches, tenant, 1, usd(10))
    await invalid(batches.AddBatchGift(_entry(batch.id, mine, usd(10, currency="EUR")), metadata=tenant.md),
                  "donation.amount.currency_code")
    await invalid(batches.AddBatchGift(_entry(batch.id, theirs, usd(10)), metadata=tenant.md), "donation.donor_id")
    await invalid(batches.AddBatchGift(_entry(batch.id, "nope", usd(10)), metadata=tenant.md), "donation.donor_id")
    await invalid(batches.AddBatchGift(_entry(batch.id, mine, usd(0)), metadata=tenant.md), "donation.amount")
    await invalid(batches.AddBatchGift(_entry("nope", mine, usd(10)), metadata=tenant.md), "batch_id")
    after = (await batches.GetGiftBatch(bpb.GetGiftBatchRequest(id=batch.id), metadata=tenant.md)).batch
    assert after.entered_count == 0


async def test_another_tenants_batch_is_not_found(stubs, batches, tenant, other_tenant):
    batch = await _batch(batches, tenant, 0, usd(0))
    theirs = (await stubs.donors.CreateDonor(new_donor(), metadata=other_tenant.md)).donor.id
    for call in (batches.GetGiftBatch(bpb.GetGiftBatchRequest(id=batch.id), metadata=other_tenant.md),
                 batches.PostGiftBatch(bpb.PostGiftBatchRequest(id=batch.id), metadata=other_tenant.md),
                 batches.AddBatchGift(_entry(batch.id, theirs, usd(1)), metadata=other_tenant.md),
                 batches.ListBatchGifts(bpb.ListBatchGiftsRequest(batch_id=batch.id), metadata=other_tenant.md)):
        await fails(call, grpc.StatusCode.NOT_FOUND)
    assert list((await batches.ListGiftBatches(bpb.ListGiftBatchesRequest(), metadata=other_tenant.md)).batches) == []
    # An empty batch expecting nothing balances and posts.
    posted = (await batches.PostGiftBatch(bpb.PostGiftBatchRequest(id=batch.id), metadata=tenant.md)).batch
    assert posted.status == gift_batch_pb2.GIFT_BATCH_STATUS_POSTED
