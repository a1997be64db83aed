"""Refunds: partial and whole, net totals everywhere (donor, project, insight, merge), history,
idempotency, the over-refund race, events, bad input and tenancy."""

import asyncio
import uuid

import grpc
import pytest
from givance.crm.v1 import (
    donation_pb2,
    donor_list_pb2,
    insight_pb2,
    project_pb2,
)
from givance.crm.v1 import donation_service_pb2 as dpb
from givance.crm.v1 import donor_list_service_pb2 as lpb
from givance.crm.v1 import donor_service_pb2 as pb
from givance.crm.v1 import insight_service_pb2 as ipb
from givance.crm.v1 import project_service_pb2 as ppb
from givance.events.v1 import crm_events_pb2, event_pb2

from tests.helpers import day, error_reason, fails, gift, invalid, new_donor, usd


@pytest.fixture
def more(stubs):
    return stubs.projects, stubs.insight, stubs.donor_lists


async def _donor(stubs, tenant):
    return (await stubs.donors.CreateDonor(new_donor(), metadata=tenant.md)).donor


async def _gift(stubs, tenant, donor_id, amount=None, **kw):
    return (await stubs.donations.RecordDonation(gift(donor_id, amount or usd(100), **kw), metadata=tenant.md)).donation


def _refund(donation_id, amount=None, reason="chargeback", **kw):
    kw.setdefault("refund_date", day(2026, 11, 2))  # after every gift here, whatever the clock says
    return dpb.RefundDonationRequest(donation_id=donation_id, amount=amount, reason=reason, **kw)


async def _totals(stubs, tenant, donor_id):
    donor = (await stubs.donors.GetDonor(pb.GetDonorRequest(id=donor_id), metadata=tenant.md)).donor
    return {t.lifetime_amount.currency_code: (t.lifetime_amount.units, t.lifetime_amount.nanos, t.donation_count)
            for t in donor.giving_totals}


async def _written(admin_db, org_id):
    """Everything a refund writes, for 'nothing written' checks."""
    return (
        await admin_db.fetchval("SELECT count(*) FROM crm.donation_refunds WHERE organization_id = $1::uuid", org_id),
        await admin_db.fetchval("SELECT COALESCE(sum(refunded_amount), 0) FROM crm.donations "
                                "WHERE organization_id = $1::uuid", org_id),
        await admin_db.fetchval("SELECT COALESCE(sum(lifetime_amount), 0) FROM crm.donor_giving "
                                "WHERE organization_id = $1::uuid", org_id),
        await admin_db.fetchval("SELECT count(*) FROM crm.outbox WHERE tenant_id = $1::uuid "
                                "AND routing_key <> 'crm.audit.batch_recorded'", org_id),
    )


async def test_partial_then_whole_refund_nets_the_totals_and_keeps_history(stubs, tenant, admin_db):
    donor = await _donor(stubs, tenant)
    g = await _gift(stubs, tenant, donor.id, usd(100), date=day(2025, 3, 1))
    await _gift(stubs, tenant, donor.id, usd(50), date=day(2025, 5, 1))

    r = await stubs.donations.RefundDonation(_refund(g.id, usd(30, 250_000_000), refund_date=day(2025, 4, 1)),
                                             metadata=tenant.md)
    assert r.donation.status == donation_pb2.DONATION_STATUS_PARTIALLY_REFUNDED
    assert (r.donation.refunded_amount.units, r.donation.refunded_amount.nanos) == (30, 250_000_000)
    assert (r.refund.amount.units, r.refund.reason, r.refund.refund_date.month) == (30, "chargeback", 4)
    assert await _totals(stubs, tenant, donor.id) == {"USD": (119, 750_000_000, 2)}

    # No amount: the whole remaining 69.75; no refund date: today.
    r2 = await stubs.donations.RefundDonation(dpb.RefundDonationRequest(donation_id=g.id, reason="chargeback"),
                                              metadata=tenant.md)
    assert r2.refund.refund_date.year >= 2025
    assert (r2.refund.amount.units, r2.refund.amount.nanos) == (69, 750_000_000)
    assert r2.donation.status == donation_pb2.DONATION_STATUS_REFUNDED
    # A fully refunded gift counts in no total: one gift of 50 remains.
    assert await _totals(stubs, tenant, donor.id) == {"USD": (50, 0, 1)}

    got = await stubs.donations.GetDonation(dpb.GetDonationRequest(id=g.id), metadata=tenant.md)
    assert [(x.amount.units, x.amount.nanos) for x in got.refunds] == [(30, 250_000_000), (69, 750_000_000)]
    assert got.donation.status == donation_pb2.DONATION_STATUS_REFUNDED

    rows = await admin_db.fetch("SELECT body FROM crm.outbox WHERE aggregate_id = $1 "
                                "AND routing_key = 'crm.donation.refunded' ORDER BY created_at", donor.id)
    assert len(rows) == 2
    env = event_pb2.Event.FromString(rows[1]["body"])
    ev = crm_events_pb2.DonationRefundedEvent()
    assert env.payload.Unpack(ev) and env.tenant_id == tenant.org_id
    assert ev.donation_id == g.id and ev.fully_refunded and ev.remaining_amount.units == 0
    assert (ev.amount.units, ev.refunded_amount.units) == (69, 100)
    audited = await admin_db.fetchval("SELECT count(*) FROM crm.outbox WHERE aggregate_id = $1 "
                                      "AND routing_key = 'crm.audit.recorded'", g.id)
    assert audited == 3  # recorded, refunded twice


async def test_refunding_everything_drops_the_currency_total(stubs, tenant):
    donor = await _donor(stubs, tenant)
    g = await _gift(stubs, tenant, donor.id, usd(40, currency="EUR"))
    await _gift(stubs, tenant, donor.id, usd(10))
    await stubs.donations.RefundDonation(_refund(g.id), metadata=tenant.md)
    assert await _totals(stubs, tenant, donor.id) == {"USD": (10, 0, 1)}


async def test_refund_over_the_remaining_fails_and_writes_nothing(stubs, tenant, admin_db):
    donor = await _donor(stubs, tenant)
    g = await _gift(stubs, tenant, donor.id, usd(100))
    await stubs.donations.RefundDonation(_refund(g.id, usd(60)), metadata=tenant.md)
    before = await _written(admin_db, tenant.org_id)
    err = await fails(stubs.donations.RefundDonation(_refund(g.id, usd(40, 10_000_000)), metadata=tenant.md),
                      grpc.StatusCode.FAILED_PRECONDITION)
    assert error_reason(err) == "REFUND_EXCEEDS_REMAINING"
    assert await _written(admin_db, tenant.org_id) == before
    await stubs.donations.RefundDonation(_refund(g.id, usd(40)), metadata=tenant.md)
    err = await fails(stubs.donations.RefundDonation(_refund(g.id), metadata=tenant.md),
                      grpc.StatusCode.FAILED_PRECONDITION)
    assert error_reason(err) == "DONATION_FULLY_REFUNDED"


async def test_racing_refunds_never_over_refund(stubs, tenant, admin_db):
    donor = await _donor(stubs, tenant)
    g = await _gift(stubs, tenant, donor.id, usd(100))
    results = await asyncio.gather(*[stubs.donations.RefundDonation(_refund(g.id, usd(30)), metadata=tenant.md)
                                     for _ in range(6)], return_exceptions=True)
    ok = [r for r in results if not isinstance(r, Exception)]
    failed = [r for r in results if isinstance(r, Exception)]
    assert len(ok) == 3 and len(failed) == 3
    assert all(e.code() == grpc.StatusCode.FAILED_PRECONDITION for e in failed)
    got = (await stubs.donations.GetDonation(dpb.GetDonationRequest(id=g.id), metadata=tenant.md))
    assert got.donation.refunded_amount.units == 90 and len(got.refunds) == 3
    assert await _totals(stubs, tenant, donor.id) == {"USD": (10, 0, 1)}


async def test_retried_refund_with_request_id_refunds_once(stubs, tenant, admin_db):
    donor = await _donor(stubs, tenant)
    g = await _gift(stubs, tenant, donor.id, usd(100))
    rid = uuid.uuid4().hex
    first = await stubs.donations.RefundDonation(_refund(g.id, usd(25), request_id=rid), metadata=tenant.md)
    again = await stubs.donations.RefundDonation(_refund(g.id, usd(25), request_id=rid), metadata=tenant.md)
    assert first.refund.id == again.refund.id and again.donation.refunded_amount.units == 25
    assert await _totals(stubs, tenant, donor.id) == {"USD": (75, 0, 1)}
    events = await admin_db.fetchval("SELECT count(*) FROM crm.outbox WHERE aggregate_id = $1 "
                                     "AND routing_key = 'crm.donation.refunded'", donor.id)
    assert events == 1


async def test_project_raised_and_donor_count_are_net(stubs, tenant, more):
    projects, _, _ = more
    project = (await projects.CreateProject(ppb.CreateProjectRequest(project=project_pb2.Project(
        name="Roof")), metadata=tenant.md)).project
    a, b = await _donor(stubs, tenant), await _donor(stubs, tenant)
    ga = await _gift(stubs, tenant, a.id, usd(100), project_id=project.id)
    gb = await _gift(stubs, tenant, b.id, usd(50), project_id=project.id)
    await stubs.donations.RefundDonation(_refund(ga.id, usd(30)), metadata=tenant.md)
    await stubs.donations.RefundDonation(_refund(gb.id), metadata=tenant.md)
    got = (await projects.GetProject(ppb.GetProjectRequest(id=project.id), metadata=tenant.md)).project
    assert got.raised_amount.units == 70 and got.donor_count == 1


async def test_insight_figures_are_net_of_refunds(stubs, tenant, more):
    _, insight, _ = more
    donor = await _donor(stubs, tenant)
    big = await _gift(stubs, tenant, donor.id, usd(500), date=day(2025, 2, 1))
    part = await _gift(stubs, tenant, donor.id, usd(100), date=day(2025, 3, 1))
    await _gift(stubs, tenant, donor.id, usd(80), date=day(2025, 4, 1))
    await stubs.donations.RefundDonation(_refund(big.id), metadata=tenant.md)
    await stubs.donations.RefundDonation(_refund(part.id, usd(40)), metadata=tenant.md)
    g = (await insight.GetDonorGiving(ipb.GetDonorGivingRequest(donor_id=donor.id), metadata=tenant.md)).giving
    assert g.lifetime_total.units == 140 and g.gift_count == 2
    assert g.largest_gift.amount.units == 80 and g.first_gift.date.month == 3
    assert [(y.year, y.total.units, y.gift_count) for y in g.years] == [(2025, 140, 2)]
    s = (await insight.GetGivingSummary(ipb.GetGivingSummaryRequest(
        period=insight_pb2.SUMMARY_PERIOD_YEAR, start_date=day(2025, 1, 1), end_date=day(2025, 12, 31),
        currency_code="USD"), metadata=tenant.md))
    assert [(p.total.units, p.gift_count, p.donor_count, p.average_gift.units) for p in s.periods] == [(140, 2, 1, 70)]


async def test_lybunt_ignores_a_fully_refunded_gift(stubs, tenant, more):
    _, insight, _ = more
    donor = await _donor(stubs, tenant)
    await _gift(stubs, tenant, donor.id, usd(70), date=day(2024, 5, 1))
    this_year = await _gift(stubs, tenant, donor.id, usd(20), date=day(2025, 5, 1))
    lyb = await insight.ListLybuntDonors(ipb.ListLybuntDonorsRequest(year=2025), metadata=tenant.md)
    assert donor.id not in [d.donor_id for d in lyb.donors]
    await stubs.donations.RefundDonation(_refund(this_year.id), metadata=tenant.md)
    lyb = await insight.ListLybuntDonors(ipb.ListLybuntDonorsRequest(year=2025), metadata=tenant.md)
    assert [(d.donor_id, d.last_year_total.units) for d in lyb.donors] == [(donor.id, 70)]


async def test_dynamic_list_giving_filters_see_net_totals(stubs, tenant, more):
    _, _, lists = more
    a, b = await _donor(stubs, tenant), await _donor(stubs, tenant)
    ga = await _gift(stubs, tenant, a.id, usd(100), date=day(2025, 1, 1))
    await _gift(stubs, tenant, a.id, usd(10), date=day(2024, 1, 1))
    await _gift(stubs, tenant, b.id, usd(60), date=day(2025, 6, 1))
    await stubs.donations.RefundDonation(_refund(ga.id), metadata=tenant.md)

    async def matches(**kw):
        lst = (await lists.CreateDonorList(lpb.CreateDonorListRequest(donor_list=donor_list_pb2.DonorList(
            name="L", type=donor_list_pb2.DONOR_LIST_TYPE_DYNAMIC, filter=donor_list_pb2.DonorListFilter(**kw))),
            metadata=tenant.md)).donor_list
        members = await lists.ListDonorListMembers(lpb.ListDonorListMembersRequest(list_id=lst.id),
                                                   metadata=tenant.md)
        return {d.id for d in members.donors} & {a.id, b.id}

    assert await matches(min_lifetime_giving=usd(50)) == {b.id}
    assert await matches(max_lifetime_giving=usd(20)) == {a.id}
    assert await matches(last_gift_after=day(2024, 6, 1)) == {b.id}  # a's 2025 gift was refunded


async def test_merge_recomputes_net_totals(stubs, tenant):
    survivor, merged = await _donor(stubs, tenant), await _donor(stubs, tenant)
    await _gift(stubs, tenant, survivor.id, usd(10))
    g = await _gift(stubs, tenant, merged.id, usd(100))
    gone = await _gift(stubs, tenant, merged.id, usd(5))
    await stubs.donations.RefundDonation(_refund(g.id, usd(60)), metadata=tenant.md)
    await stubs.donations.RefundDonation(_refund(gone.id), metadata=tenant.md)
    await stubs.donors.MergeDonors(pb.MergeDonorsRequest(survivor_id=survivor.id, merged_id=merged.id),
                                   metadata=tenant.md)
    assert await _totals(stubs, tenant, survivor.id) == {"USD": (50, 0, 2)}


@pytest.mark.parametrize("change,field", [
    ({"reason": ""}, "reason"),
    ({"reason": "x" * 1001}, "reason"),
    ({"donation_id": "nope"}, "donation_id"),
    ({"donation_id": ""}, "donation_id"),
    ({"amount": usd(-5)}, "amount"),
    ({"amount": usd(0)}, "amount"),
    ({"amount": usd(1, 5_000_000)}, "amount"),
    ({"amount": usd(5, currency="usd")}, "amount.currency_code"),
    ({"amount": usd(5, currency="EUR")}, "amount.currency_code"),  # not the gift's currency
    ({"refund_date": day(2026, 2, 30)}, "refund_date"),
    ({"refund_date": day(2020, 1, 1)}, "refund_date"),  # before the gift
    ({"request_id": "x" * 101}, "request_id"),
])
async def test_refund_bad_input_names_the_field_and_writes_nothing(stubs, tenant, admin_db, change, field):
    donor = await _donor(stubs, tenant)
    g = await _gift(stubs, tenant, donor.id, usd(100), date=day(2026, 1, 10))
    request = _refund(g.id, refund_date=day(2026, 2, 1))
    for k, v in change.items():
        if k in ("amount", "refund_date"):
            getattr(request, k).CopyFrom(v)
        else:
            setattr(request, k, v)
    before = await _written(admin_db, tenant.org_id)
    await invalid(stubs.donations.RefundDonation(request, metadata=tenant.md), field)
    assert await _written(admin_db, tenant.org_id) == before


async def test_other_tenants_gift_cannot_be_refunded_or_read(stubs, tenant, other_tenant, admin_db):
    donor = await _donor(stubs, tenant)
    g = await _gift(stubs, tenant, donor.id, usd(100))
    before = await _written(admin_db, tenant.org_id)
    for request in (_refund(g.id), _refund(str(uuid.uuid4()))):
        await fails(stubs.donations.RefundDonation(request, metadata=other_tenant.md), grpc.StatusCode.NOT_FOUND)
    await fails(stubs.donations.GetDonation(dpb.GetDonationRequest(id=g.id), metadata=other_tenant.md),
                grpc.StatusCode.NOT_FOUND)
    assert await _written(admin_db, tenant.org_id) == before
    await invalid(stubs.donations.GetDonation(dpb.GetDonationRequest(id="nope"), metadata=tenant.md), "id")
