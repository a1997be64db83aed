"""Matching gifts (an employer's match of an employee's gift: pledged, then received as the
employer's gift soft-crediting the employee) and tributes (a gift in honour or memory of someone,
with a notification recipient published for comms); bad input by field; tenancy."""

import uuid

import grpc
import pytest
from givance.crm.v1 import (
    donation_pb2,
    matching_gift_pb2,
    matching_gift_service_pb2,
    matching_gift_service_pb2_grpc,
)
from givance.crm.v1 import donation_service_pb2 as dpb
from givance.crm.v1 import donor_service_pb2 as pb
from givance.crm.v1 import matching_gift_service_pb2 as mpb
from givance.events.v1 import crm_events_pb2, event_pb2

from services.crm.handlers.rollups import check_rollups
from tests.crm.every_rpc import EveryRpc
from tests.helpers import day, error_reason, fails, gift, invalid, new_donor, usd

PLEDGED, RECEIVED = matching_gift_pb2.MATCHING_GIFT_STATUS_PLEDGED, matching_gift_pb2.MATCHING_GIFT_STATUS_RECEIVED


@pytest.fixture
def matches(stubs):
    return matching_gift_service_pb2_grpc.MatchingGiftServiceStub(stubs.crm_channel)


async def _donor(stubs, tenant, **kw):
    return (await stubs.donors.CreateDonor(new_donor(**kw), metadata=tenant.md)).donor


async def _gift(stubs, tenant, donor_id, amount=None, **kw):
    return (await stubs.donations.RecordDonation(gift(donor_id, amount or usd(100), **kw), metadata=tenant.md)).donation


def _match(gift_id, employer_id, amount, **kw):
    return mpb.CreateMatchingGiftRequest(matching_gift=matching_gift_pb2.MatchingGift(
        donation_id=gift_id, employer_donor_id=employer_id, amount=amount, **kw))


async def _soft(stubs, tenant, donor_id):
    d = (await stubs.donors.GetDonor(pb.GetDonorRequest(id=donor_id), metadata=tenant.md)).donor
    return [(t.soft_amount.units, t.soft_credit_count) for t in d.giving_totals]


async def test_a_match_is_pledged_then_received_with_a_soft_credit(stubs, matches, tenant, admin_db, crm_db):
    employee = await _donor(stubs, tenant, first_name="Eve")
    employer = await _donor(stubs, tenant, first_name="Acme", last_name="Corp")
    g = await _gift(stubs, tenant, employee.id, usd(250))
    m = (await matches.CreateMatchingGift(_match(g.id, employer.id, usd(250), expected_date=day(2026, 12, 31)),
                                          metadata=tenant.md)).matching_gift
    assert (m.status, m.employee_donor_id, m.match_donation_id) == (PLEDGED, employee.id, "")
    err = await fails(matches.CreateMatchingGift(_match(g.id, employer.id, usd(10)), metadata=tenant.md),
                      grpc.StatusCode.ALREADY_EXISTS)
    assert error_reason(err) == "MATCH_EXISTS"

    got = await matches.ReceiveMatchingGift(mpb.ReceiveMatchingGiftRequest(
        id=m.id, etag=m.etag, date=day(2026, 12, 20), payment_method=donation_pb2.PAYMENT_METHOD_CHECK,
        reference_number="ACME-77"), metadata=tenant.md)
    assert got.matching_gift.status == RECEIVED and got.matching_gift.match_donation_id == got.donation.id
    assert (got.donation.donor_id, got.donation.amount.units, got.donation.reference_number) == (
        employer.id, 250, "ACME-77")
    assert [(c.donor_id, c.role) for c in got.donation.soft_credits] == [
        (employee.id, donation_pb2.SOFT_CREDIT_ROLE_MATCHED_EMPLOYEE)]
    assert await _soft(stubs, tenant, employee.id) == [(250, 1)]
    err = await fails(matches.ReceiveMatchingGift(mpb.ReceiveMatchingGiftRequest(id=m.id, date=day(2026, 12, 21)),
                                                  metadata=tenant.md), grpc.StatusCode.FAILED_PRECONDITION)
    assert error_reason(err) == "MATCH_RECEIVED"
    kinds = await admin_db.fetch("SELECT routing_key FROM crm.outbox WHERE tenant_id = $1::uuid "
                                 "AND routing_key LIKE 'crm.matching_gift.%' ORDER BY id", tenant.org_id)
    assert [k["routing_key"] for k in kinds] == ["crm.matching_gift.pledged", "crm.matching_gift.received"]
    listed = await matches.ListMatchingGifts(mpb.ListMatchingGiftsRequest(status=RECEIVED), metadata=tenant.md)
    assert [x.id for x in listed.matching_gifts] == [m.id]
    assert await check_rollups(crm_db, uuid.UUID(tenant.org_id)) == []


async def test_bad_matches_are_named_by_field(stubs, matches, tenant, admin_db):
    employee, employer = await _donor(stubs, tenant), await _donor(stubs, tenant)
    g = await _gift(stubs, tenant, employee.id, usd(100))
    for request, field in (
        (_match("nope", employer.id, usd(1)), "matching_gift.donation_id"),
        (_match(str(uuid.uuid4()), employer.id, usd(1)), "matching_gift.donation_id"),
        (_match(g.id, "", usd(1)), "matching_gift.employer_donor_id"),
        (_match(g.id, employee.id, usd(1)), "matching_gift.employer_donor_id"),
        (_match(g.id, str(uuid.uuid4()), usd(1)), "matching_gift.employer_donor_id"),
        (_match(g.id, employer.id, usd(0)), "matching_gift.amount"),
        (_match(g.id, employer.id, usd(1, currency="EUR")), "matching_gift.amount.currency_code"),
        (_match(g.id, employer.id, None), "matching_gift.amount"),
    ):
        await invalid(matches.CreateMatchingGift(request, metadata=tenant.md), field)
    assert await admin_db.fetchval("SELECT count(*) FROM crm.matching_gifts WHERE organization_id = $1::uuid",
                                   tenant.org_id) == 0
    m = (await matches.CreateMatchingGift(_match(g.id, employer.id, usd(50)), metadata=tenant.md)).matching_gift
    await invalid(matches.ReceiveMatchingGift(mpb.ReceiveMatchingGiftRequest(id=m.id), metadata=tenant.md), "date")
    await invalid(matches.ReceiveMatchingGift(mpb.ReceiveMatchingGiftRequest(
        id=m.id, date=day(2026, 1, 1), reference_number="r" * 201), metadata=tenant.md), "reference_number")


async def test_another_tenants_match_is_not_found(stubs, matches, tenant, other_tenant):
    employee, employer = await _donor(stubs, tenant), await _donor(stubs, tenant)
    g = await _gift(stubs, tenant, employee.id)
    m = (await matches.CreateMatchingGift(_match(g.id, employer.id, usd(5)), metadata=tenant.md)).matching_gift
    every = EveryRpc(matches, matching_gift_service_pb2, "MatchingGiftService")
    await fails(every.GetMatchingGift(mpb.GetMatchingGiftRequest(id=m.id), metadata=other_tenant.md),
                grpc.StatusCode.NOT_FOUND)
    await fails(every.ReceiveMatchingGift(mpb.ReceiveMatchingGiftRequest(id=m.id, date=day(2026, 1, 1)),
                                          metadata=other_tenant.md), grpc.StatusCode.NOT_FOUND)
    listed = await every.ListMatchingGifts(mpb.ListMatchingGiftsRequest(donation_id=g.id), metadata=other_tenant.md)
    assert list(listed.matching_gifts) == []
    theirs = await _donor(stubs, other_tenant)
    await invalid(every.CreateMatchingGift(_match(g.id, theirs.id, usd(5)), metadata=other_tenant.md),
                  "matching_gift.donation_id")
    assert every.uncalled() == set()


def _tribute(**kw):
    kw.setdefault("kind", donation_pb2.TRIBUTE_KIND_MEMORY)
    kw.setdefault("honoree_name", "Rosa Parks")
    return donation_pb2.Tribute(**kw)


async def test_a_tribute_is_kept_and_published_for_comms(stubs, tenant, admin_db):
    donor = await _donor(stubs, tenant, first_name="Ida", last_name="Wells", email="ida@example.org")
    g = await _gift(stubs, tenant, donor.id, usd(75), tribute=_tribute(
        notify_name=" Elaine Steele ", notify_email="Elaine@Example.org", notify_street="1 Main St",
        notify_city="Detroit", notify_state="MI", notify_postal_code="48201", notify_country="US",
        message="In her memory"))
    assert (g.tribute.kind, g.tribute.notify_name, g.tribute.notify_email) == (
        donation_pb2.TRIBUTE_KIND_MEMORY, "Elaine Steele", "Elaine@example.org")
    got = (await stubs.donations.GetDonation(dpb.GetDonationRequest(id=g.id), metadata=tenant.md)).donation
    assert got.tribute == g.tribute
    raw = await admin_db.fetchval("SELECT body FROM crm.outbox WHERE tenant_id = $1::uuid "
                                  "AND routing_key = 'crm.tribute.recorded'", tenant.org_id)
    body = crm_events_pb2.TributeRecordedEvent()
    assert event_pb2.Event.FromString(raw).payload.Unpack(body)
    assert (body.donation_id, body.kind, body.honoree_name, body.notify_email, body.notify_city,
            body.donor_first_name, body.amount.units) == (g.id, "memory", "Rosa Parks", "Elaine@example.org",
                                                          "Detroit", "Ida", 75)
    plain = await _gift(stubs, tenant, donor.id)
    assert not plain.HasField("tribute")


@pytest.mark.parametrize("tribute,field", [
    (dict(kind=0), "donation.tribute.kind"),
    (dict(honoree_name=" "), "donation.tribute.honoree_name"),
    (dict(honoree_name="x" * 201), "donation.tribute.honoree_name"),
    (dict(notify_email="not-an-address"), "donation.tribute.notify_email"),
    (dict(notify_city="c" * 201), "donation.tribute.notify_city"),
    (dict(message="m" * 2001), "donation.tribute.message"),
])
async def test_bad_tributes_are_named_by_field(stubs, tenant, admin_db, tribute, field):
    donor = await _donor(stubs, tenant)
    await invalid(stubs.donations.RecordDonation(gift(donor.id, usd(5), tribute=_tribute(**tribute)),
                                                 metadata=tenant.md), field)
    assert await admin_db.fetchval("SELECT count(*) FROM crm.donations WHERE organization_id = $1::uuid",
                                   tenant.org_id) == 0
