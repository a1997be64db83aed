"""Funds (general accounting units) and gift splits: exact by a deferred database check,
refund shares and corrections kept exact, fund totals per period, bad input by field, tenancy."""

import uuid

import asyncpg
import grpc
import pytest
from givance.crm.v1 import donation_pb2, fund_pb2, fund_service_pb2_grpc, insight_pb2
from givance.crm.v1 import donation_service_pb2 as dpb
from givance.crm.v1 import fund_service_pb2 as fpb
from google.protobuf import field_mask_pb2

from tests.helpers import day, error_reason, fails, gift, invalid, new_donor, usd


@pytest.fixture
def funds(stubs):
    return fund_service_pb2_grpc.FundServiceStub(stubs.crm_channel)


async def _fund(funds, tenant, name, **kw):
    return (await funds.CreateFund(fpb.CreateFundRequest(fund=fund_pb2.Fund(name=name, **kw)),
                                   metadata=tenant.md)).fund


def split(*parts):
    return [donation_pb2.FundAllocation(fund_id=f, amount=a) for f, a in parts]


def cents(m):
    return m.units * 100 + m.nanos // 10_000_000


async def test_funds_are_created_listed_updated_and_closed(funds, tenant):
    a = await _fund(funds, tenant, "Food Pantry", code="4010", restriction=fund_pb2.FUND_RESTRICTION_RESTRICTED)
    b = await _fund(funds, tenant, "general operating")
    assert (a.restriction, a.status, a.code) == (fund_pb2.FUND_RESTRICTION_RESTRICTED, fund_pb2.FUND_STATUS_ACTIVE,
                                                 "4010")
    assert b.restriction == fund_pb2.FUND_RESTRICTION_UNRESTRICTED
    err = await fails(funds.CreateFund(fpb.CreateFundRequest(fund=fund_pb2.Fund(name="food pantry")),
                                       metadata=tenant.md), grpc.StatusCode.ALREADY_EXISTS)
    assert error_reason(err) == "FUND_NAME_TAKEN"
    again = await funds.CreateFund(fpb.CreateFundRequest(fund=fund_pb2.Fund(name="Capital"), request_id="r1"),
                                   metadata=tenant.md)
    same = await funds.CreateFund(fpb.CreateFundRequest(fund=fund_pb2.Fund(name="Capital"), request_id="r1"),
                                  metadata=tenant.md)
    assert again.fund.id == same.fund.id
    listed = await funds.ListFunds(fpb.ListFundsRequest(page_size=2), metadata=tenant.md)
    assert [f.name for f in listed.funds] == ["Capital", "Food Pantry"] and listed.next_page_token
    closed = (await funds.UpdateFund(fpb.UpdateFundRequest(
        fund=fund_pb2.Fund(id=b.id, etag=b.etag, status=fund_pb2.FUND_STATUS_CLOSED),
        update_mask=field_mask_pb2.FieldMask(paths=["status"])), metadata=tenant.md)).fund
    assert closed.status == fund_pb2.FUND_STATUS_CLOSED and closed.name == "general operating"
    await fails(funds.UpdateFund(fpb.UpdateFundRequest(fund=fund_pb2.Fund(id=b.id, etag=b.etag, name="x"),
                                                       update_mask=field_mask_pb2.FieldMask(paths=["name"])),
                                 metadata=tenant.md), grpc.StatusCode.ABORTED)
    only_closed = await funds.ListFunds(fpb.ListFundsRequest(status=fund_pb2.FUND_STATUS_CLOSED), metadata=tenant.md)
    assert [f.id for f in only_closed.funds] == [b.id]


async def test_bad_funds_are_named_by_field(funds, tenant):
    for fund, field in [(fund_pb2.Fund(name=""), "fund.name"), (fund_pb2.Fund(name="x" * 201), "fund.name"),
                        (fund_pb2.Fund(name="a", code="c" * 51), "fund.code"),
                        (fund_pb2.Fund(name="a", description="d" * 2001), "fund.description"),
                        (fund_pb2.Fund(name="a", restriction=7), "fund.restriction")]:
        await invalid(funds.CreateFund(fpb.CreateFundRequest(fund=fund), metadata=tenant.md), field)
    await invalid(funds.ListFundTotals(fpb.ListFundTotalsRequest(end_date=day()), metadata=tenant.md), "start_date")
    await invalid(funds.ListFundTotals(fpb.ListFundTotalsRequest(start_date=day(2026, 2, 1), end_date=day(2026, 1, 1)),
                                       metadata=tenant.md), "end_date")


async def test_a_split_adds_up_exactly_through_refunds_and_corrections(stubs, funds, tenant, admin_db):
    donor = (await stubs.donors.CreateDonor(new_donor(), metadata=tenant.md)).donor
    f1, f2, f3 = [(await _fund(funds, tenant, n)).id for n in ("Pantry", "Shelter", "General")]
    closed = await _fund(funds, tenant, "Old", status=fund_pb2.FUND_STATUS_CLOSED)
    before = await admin_db.fetchval("SELECT count(*) FROM crm.donations WHERE organization_id = $1::uuid",
                                     tenant.org_id)
    for parts, field in [
        (split((f1, usd(50)), (f2, usd(49))), "donation.allocations"),
        (split((f1, usd(50)), (f1, usd(50))), "donation.allocations[1].fund_id"),
        (split(("x", usd(100))), "donation.allocations[0].fund_id"),
        (split((f1, usd(0)), (f2, usd(100))), "donation.allocations[0].amount"),
        (split((f1, usd(100, currency="EUR"))), "donation.allocations[0].amount.currency_code"),
        (split((closed.id, usd(100))), "donation.allocations[0].fund_id"),
        (split((str(uuid.uuid4()), usd(100))), "donation.allocations[0].fund_id"),
    ]:
        await invalid(stubs.donations.RecordDonation(gift(donor.id, usd(100), allocations=parts), metadata=tenant.md),
                      field)
    assert await admin_db.fetchval("SELECT count(*) FROM crm.donations WHERE organization_id = $1::uuid",
                                   tenant.org_id) == before

    g = (await stubs.donations.RecordDonation(gift(donor.id, usd(100), date=day(2026, 1, 15), allocations=split(
        (f1, usd(33, 330_000_000)), (f2, usd(33, 330_000_000)), (f3, usd(33, 340_000_000)))),
        metadata=tenant.md)).donation
    assert [cents(a.amount) for a in g.allocations] == [3333, 3333, 3334]
    r = (await stubs.donations.RefundDonation(dpb.RefundDonationRequest(
        donation_id=g.id, amount=usd(10), reason="bounced", refund_date=day(2026, 2, 1)), metadata=tenant.md)).donation
    shares = [cents(a.refunded_amount) for a in r.allocations]
    assert sum(shares) == 1000 and max(shares) - min(shares) <= 1
    # A corrected amount is carried over the split in proportion, still exact.
    u = (await stubs.donations.UpdateDonation(dpb.UpdateDonationRequest(
        donation=donation_pb2.Donation(id=g.id, amount=usd(200)), update_mask=field_mask_pb2.FieldMask(
            paths=["amount"]), reason="was 200"), metadata=tenant.md)).donation
    assert sum(cents(a.amount) for a in u.allocations) == 20000
    assert sum(cents(a.refunded_amount) for a in u.allocations) == 1000
    # Replaced by SetDonationAllocations; a stale etag is ABORTED; a split that does not add up is refused.
    s = (await stubs.donations.SetDonationAllocations(dpb.SetDonationAllocationsRequest(
        donation_id=g.id, etag=u.etag, allocations=split((f1, usd(150)), (f3, usd(50)))), metadata=tenant.md)).donation
    assert [(a.fund_id, cents(a.amount), cents(a.refunded_amount)) for a in s.allocations] == [
        (f1, 15000, 750), (f3, 5000, 250)]
    await fails(stubs.donations.SetDonationAllocations(dpb.SetDonationAllocationsRequest(
        donation_id=g.id, etag=u.etag, allocations=[]), metadata=tenant.md), grpc.StatusCode.ABORTED)
    await invalid(stubs.donations.SetDonationAllocations(dpb.SetDonationAllocationsRequest(
        donation_id=g.id, allocations=split((f1, usd(150)))), metadata=tenant.md), "allocations")

    # Fund totals per month, net of refunds.
    totals = (await funds.ListFundTotals(fpb.ListFundTotalsRequest(
        start_date=day(2026, 1, 1), end_date=day(2026, 12, 31), period=insight_pb2.SUMMARY_PERIOD_MONTH),
        metadata=tenant.md)).totals
    assert [(t.fund_id, t.period_start.month, cents(t.allocated_amount), cents(t.net_amount), t.gift_count)
            for t in totals] == [(f3, 1, 5000, 4750, 1), (f1, 1, 15000, 14250, 1)]


async def test_the_database_refuses_a_split_that_does_not_add_up(stubs, funds, tenant, crm_db):
    donor = (await stubs.donors.CreateDonor(new_donor(), metadata=tenant.md)).donor
    f1 = (await _fund(funds, tenant, "Pantry")).id
    g = (await stubs.donations.RecordDonation(gift(donor.id, usd(100), allocations=split((f1, usd(100)))),
                                              metadata=tenant.md)).donation
    with pytest.raises(asyncpg.CheckViolationError, match="add up"):
        async with crm_db.unit_of_work(uuid.UUID(tenant.org_id)) as uow:
            await uow.conn.execute(f"UPDATE crm.gift_allocations SET amount = 99 WHERE donation_id = '{g.id}'")


async def test_another_tenants_funds_are_not_found(stubs, funds, tenant, other_tenant):
    mine = await _fund(funds, tenant, "Pantry")
    await fails(funds.GetFund(fpb.GetFundRequest(id=mine.id), metadata=other_tenant.md), grpc.StatusCode.NOT_FOUND)
    await fails(funds.UpdateFund(fpb.UpdateFundRequest(fund=fund_pb2.Fund(id=mine.id, name="x"),
                                                       update_mask=field_mask_pb2.FieldMask(paths=["name"])),
                                 metadata=other_tenant.md), grpc.StatusCode.NOT_FOUND)
    assert list((await funds.ListFunds(fpb.ListFundsRequest(), metadata=other_tenant.md)).funds) == []
    await invalid(funds.ListFundTotals(fpb.ListFundTotalsRequest(fund_id=mine.id, start_date=day(2026, 1, 1),
                                                                 end_date=day(2026, 2, 1)), metadata=other_tenant.md),
                  "fund_id")
    donor = (await stubs.donors.CreateDonor(new_donor(), metadata=other_tenant.md)).donor
    await invalid(stubs.donations.RecordDonation(gift(donor.id, usd(10), allocations=split((mine.id, usd(10)))),
                                                 metadata=other_tenant.md), "donation.allocations[0].fund_id")
    g = (await stubs.donations.RecordDonation(gift(donor.id, usd(10)), metadata=other_tenant.md)).donation
    await fails(stubs.donations.SetDonationAllocations(dpb.SetDonationAllocationsRequest(donation_id=g.id),
                                                       metadata=tenant.md), grpc.StatusCode.NOT_FOUND)
