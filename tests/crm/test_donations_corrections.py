"""Corrections (UpdateDonation): AIP-134 masks and etags, revisions, totals of every donor and
currency a change touches, the refund floor, the crm.donation.updated event, bad input, tenancy."""

import asyncio
import json
import uuid

import grpc
import pytest
from givance.crm.v1 import donation_pb2
from givance.crm.v1 import donation_service_pb2 as dpb
from givance.crm.v1 import donor_service_pb2 as pb
from givance.events.v1 import crm_events_pb2, event_pb2
from google.protobuf import field_mask_pb2

from tests.helpers import day, error_reason, fails, gift, invalid, new_donor, usd


async def _donor(stubs, tenant):
    return (await stubs.donors.CreateDonor(new_donor(), metadata=tenant.md)).donor


async def _gift(stubs, tenant, donor_id, amount=None, **kw):
    return (await stubs.donations.RecordDonation(gift(donor_id, amount or usd(100), **kw), metadata=tenant.md)).donation


def _update(donation_id, paths, reason="typo in the batch", etag="", **fields):
    return dpb.UpdateDonationRequest(donation=donation_pb2.Donation(id=donation_id, etag=etag, **fields),
                                     update_mask=field_mask_pb2.FieldMask(paths=paths), reason=reason)


async def _totals(stubs, tenant, donor_id):
    donor = (await stubs.donors.GetDonor(pb.GetDonorRequest(id=donor_id), metadata=tenant.md)).donor
    return {t.lifetime_amount.currency_code: (t.lifetime_amount.units, t.donation_count,
                                              (t.first_gift_date.month, t.last_gift_date.month))
            for t in donor.giving_totals}


async def _written(admin_db, org_id):
    return (
        await admin_db.fetchval("SELECT count(*) FROM crm.donation_revisions WHERE organization_id = $1::uuid",
                                org_id),
        await admin_db.fetchval("SELECT string_agg(concat_ws('/', donor_id, amount, currency, date), ',' ORDER BY id) "
                                "FROM crm.donations WHERE organization_id = $1::uuid", org_id),
        await admin_db.fetchval("SELECT string_agg(concat_ws('/', donor_id, currency, lifetime_amount), ',' "
                                "ORDER BY donor_id, currency) FROM crm.donor_giving WHERE organization_id = $1::uuid",
                                org_id),
        await admin_db.fetchval("SELECT count(*) FROM crm.outbox WHERE tenant_id = $1::uuid "
                                "AND routing_key <> 'crm.audit.batch_recorded'", org_id),
    )


async def test_amount_and_date_correction_recomputes_totals_and_writes_a_revision(stubs, tenant, admin_db):
    donor = await _donor(stubs, tenant)
    g = await _gift(stubs, tenant, donor.id, usd(100), date=day(2026, 3, 1))
    await _gift(stubs, tenant, donor.id, usd(20), date=day(2026, 5, 1))
    got = (await stubs.donations.UpdateDonation(
        _update(g.id, ["amount", "date"], amount=usd(1000), date=day(2026, 6, 1), etag=g.etag),
        metadata=tenant.md)).donation
    assert got.amount.units == 1000 and got.date.month == 6 and got.etag != g.etag
    assert await _totals(stubs, tenant, donor.id) == {"USD": (1020, 2, (5, 6))}

    revs = (await stubs.donations.ListDonationRevisions(dpb.ListDonationRevisionsRequest(donation_id=g.id),
                                                        metadata=tenant.md)).revisions
    assert [(r.revision, list(r.changed_fields), r.reason) for r in revs] == [
        (1, ["amount", "date"], "typo in the batch")]
    assert json.loads(revs[0].before_json) == {"amount": "100.00", "currency": "USD", "date": "2026-03-01"}
    assert json.loads(revs[0].after_json) == {"amount": "1000.00", "currency": "USD", "date": "2026-06-01"}
    assert revs[0].actor_id == tenant.user_id

    body = await admin_db.fetchval("SELECT body FROM crm.outbox WHERE aggregate_id = $1 "
                                   "AND routing_key = 'crm.donation.updated'", donor.id)
    ev = crm_events_pb2.DonationUpdatedEvent()
    assert event_pb2.Event.FromString(body).payload.Unpack(ev)
    assert (ev.donation_id, list(ev.changed_fields), ev.revision, ev.amount.units) == (g.id, ["amount", "date"], 1,
                                                                                      1000)
    audited = await admin_db.fetchval("SELECT count(*) FROM crm.outbox WHERE aggregate_id = $1 "
                                      "AND routing_key = 'crm.audit.recorded'", g.id)
    assert audited == 2


async def test_moving_a_gift_to_another_donor_moves_its_totals(stubs, tenant, admin_db):
    a, b = await _donor(stubs, tenant), await _donor(stubs, tenant)
    g = await _gift(stubs, tenant, a.id, usd(100), date=day(2026, 2, 1))
    await _gift(stubs, tenant, b.id, usd(5), date=day(2026, 4, 1))
    await stubs.donations.RefundDonation(dpb.RefundDonationRequest(donation_id=g.id, amount=usd(10), reason="fee",
                                                                   refund_date=day(2026, 11, 2)),
                                         metadata=tenant.md)
    got = (await stubs.donations.UpdateDonation(_update(g.id, ["donor_id"], donor_id=b.id),
                                                metadata=tenant.md)).donation
    assert got.donor_id == b.id
    assert await _totals(stubs, tenant, a.id) == {}
    assert await _totals(stubs, tenant, b.id) == {"USD": (95, 2, (2, 4))}
    ev = crm_events_pb2.DonationUpdatedEvent()
    body = await admin_db.fetchval("SELECT body FROM crm.outbox WHERE aggregate_id = $1 "
                                   "AND routing_key = 'crm.donation.updated'", b.id)
    assert event_pb2.Event.FromString(body).payload.Unpack(ev) and ev.previous_donor_id == a.id


async def test_currency_correction_moves_the_total_to_the_new_currency(stubs, tenant):
    donor = await _donor(stubs, tenant)
    g = await _gift(stubs, tenant, donor.id, usd(100))
    await _gift(stubs, tenant, donor.id, usd(7, currency="EUR"))
    await stubs.donations.UpdateDonation(_update(g.id, ["amount"], amount=usd(90, currency="EUR")),
                                         metadata=tenant.md)
    assert await _totals(stubs, tenant, donor.id) == {"EUR": (97, 2, (11, 11))}


async def test_mask_touches_only_its_fields_and_a_no_op_writes_nothing(stubs, tenant, admin_db):
    donor = await _donor(stubs, tenant)
    g = await _gift(stubs, tenant, donor.id, usd(100), notes="first", reference_number="R-1")
    got = (await stubs.donations.UpdateDonation(_update(g.id, ["notes"], notes="second"),
                                                metadata=tenant.md)).donation
    assert (got.notes, got.reference_number, got.amount.units) == ("second", "R-1", 100)
    before = await _written(admin_db, tenant.org_id)
    same = (await stubs.donations.UpdateDonation(_update(g.id, ["notes"], notes="second"),
                                                 metadata=tenant.md)).donation
    assert same.etag == got.etag and await _written(admin_db, tenant.org_id) == before


async def test_stale_etag_is_aborted(stubs, tenant, admin_db):
    donor = await _donor(stubs, tenant)
    g = await _gift(stubs, tenant, donor.id)
    await stubs.donations.UpdateDonation(_update(g.id, ["notes"], notes="x", etag=g.etag), metadata=tenant.md)
    before = await _written(admin_db, tenant.org_id)
    await fails(stubs.donations.UpdateDonation(_update(g.id, ["notes"], notes="y", etag=g.etag), metadata=tenant.md),
                grpc.StatusCode.ABORTED)
    assert await _written(admin_db, tenant.org_id) == before


async def test_amount_cannot_go_below_the_refunded_nor_change_currency(stubs, tenant, admin_db):
    donor = await _donor(stubs, tenant)
    g = await _gift(stubs, tenant, donor.id, usd(100))
    await stubs.donations.RefundDonation(dpb.RefundDonationRequest(donation_id=g.id, amount=usd(40), reason="r",
                                                                   refund_date=day(2026, 11, 2)),
                                         metadata=tenant.md)
    before = await _written(admin_db, tenant.org_id)
    err = await fails(stubs.donations.UpdateDonation(_update(g.id, ["amount"], amount=usd(39)), metadata=tenant.md),
                      grpc.StatusCode.FAILED_PRECONDITION)
    assert error_reason(err) == "AMOUNT_BELOW_REFUNDED"
    err = await fails(stubs.donations.UpdateDonation(_update(g.id, ["amount"], amount=usd(100, currency="EUR")),
                                                     metadata=tenant.md), grpc.StatusCode.FAILED_PRECONDITION)
    assert error_reason(err) == "DONATION_HAS_REFUNDS"
    assert await _written(admin_db, tenant.org_id) == before
    # Down to exactly the refunded amount: the gift becomes fully refunded and leaves the totals.
    got = (await stubs.donations.UpdateDonation(_update(g.id, ["amount"], amount=usd(40)),
                                                metadata=tenant.md)).donation
    assert got.status == donation_pb2.DONATION_STATUS_REFUNDED
    assert await _totals(stubs, tenant, donor.id) == {}


async def test_revisions_are_numbered_and_paged(stubs, tenant):
    donor = await _donor(stubs, tenant)
    g = await _gift(stubs, tenant, donor.id)
    for i in range(3):
        await stubs.donations.UpdateDonation(_update(g.id, ["notes"], notes=f"n{i}", reason=f"r{i}"),
                                             metadata=tenant.md)
    seen, token = [], ""
    while True:
        page = await stubs.donations.ListDonationRevisions(
            dpb.ListDonationRevisionsRequest(donation_id=g.id, page_size=2, page_token=token), metadata=tenant.md)
        seen += [(r.revision, r.reason) for r in page.revisions]
        token = page.next_page_token
        if not token:
            break
    assert seen == [(1, "r0"), (2, "r1"), (3, "r2")]


@pytest.mark.parametrize("paths,fields,reason,field", [
    (["color"], {}, "r", "update_mask"),
    (["id"], {}, "r", "update_mask"),
    (["notes"], {"notes": "x"}, "", "reason"),
    (["notes"], {"notes": "x"}, "x" * 1001, "reason"),
    (["donor_id"], {"donor_id": "nope"}, "r", "donation.donor_id"),
    (["donor_id"], {"donor_id": ""}, "r", "donation.donor_id"),
    (["donor_id"], {"donor_id": str(uuid.uuid4())}, "r", "donation.donor_id"),
    (["project_id"], {"project_id": str(uuid.uuid4())}, "r", "donation.project_id"),
    (["amount"], {"amount": usd(0)}, "r", "donation.amount"),
    (["amount"], {}, "r", "donation.amount"),
    (["amount"], {"amount": usd(5, currency="us")}, "r", "donation.amount.currency_code"),
    (["date"], {"date": day(2026, 2, 31)}, "r", "donation.date"),
    (["is_recurring"], {"is_recurring": True}, "r", "donation.recurring_frequency"),
    (["recurring_frequency"], {"recurring_frequency": "monthly"}, "r", "donation.recurring_frequency"),
    (["reference_number"], {"reference_number": "x" * 201}, "r", "donation.reference_number"),
    ([], {"notes": "everything else missing"}, "r", "donation.amount"),
])
async def test_update_bad_input_names_the_field_and_writes_nothing(stubs, tenant, admin_db, paths, fields, reason,
                                                                   field):
    donor = await _donor(stubs, tenant)
    g = await _gift(stubs, tenant, donor.id)
    before = await _written(admin_db, tenant.org_id)
    await invalid(stubs.donations.UpdateDonation(_update(g.id, paths, reason=reason, **fields), metadata=tenant.md),
                  field)
    assert await _written(admin_db, tenant.org_id) == before


async def test_cannot_move_a_gift_to_another_tenants_donor(stubs, tenant, other_tenant, admin_db):
    donor = await _donor(stubs, tenant)
    theirs = await _donor(stubs, other_tenant)
    g = await _gift(stubs, tenant, donor.id)
    before = await _written(admin_db, tenant.org_id)
    await invalid(stubs.donations.UpdateDonation(_update(g.id, ["donor_id"], donor_id=theirs.id), metadata=tenant.md),
                  "donation.donor_id")
    assert await _written(admin_db, tenant.org_id) == before


async def test_other_tenant_cannot_correct_or_read_history(stubs, tenant, other_tenant, admin_db):
    donor = await _donor(stubs, tenant)
    g = await _gift(stubs, tenant, donor.id)
    await stubs.donations.UpdateDonation(_update(g.id, ["notes"], notes="mine"), metadata=tenant.md)
    before = await _written(admin_db, tenant.org_id)
    await fails(stubs.donations.UpdateDonation(_update(g.id, ["notes"], notes="theirs"), metadata=other_tenant.md),
                grpc.StatusCode.NOT_FOUND)
    await fails(stubs.donations.ListDonationRevisions(dpb.ListDonationRevisionsRequest(donation_id=g.id),
                                                      metadata=other_tenant.md), grpc.StatusCode.NOT_FOUND)
    assert await _written(admin_db, tenant.org_id) == before
    await invalid(stubs.donations.ListDonationRevisions(dpb.ListDonationRevisionsRequest(donation_id="x"),
                                                        metadata=tenant.md), "donation_id")
    await invalid(stubs.donations.ListDonationRevisions(dpb.ListDonationRevisionsRequest(donation_id=g.id,
                                                                                        page_size=-1),
                                                        metadata=tenant.md), "page_size")


async def test_concurrent_gifts_refunds_and_corrections_keep_totals_exact(stubs, tenant, admin_db):
    a, b = await _donor(stubs, tenant), await _donor(stubs, tenant)
    gifts = [await _gift(stubs, tenant, a.id, usd(100), date=day(2026, 1, i + 1)) for i in range(4)]
    calls = [stubs.donations.RecordDonation(gift(a.id, usd(10)), metadata=tenant.md) for _ in range(4)]
    calls += [stubs.donations.RecordDonation(gift(b.id, usd(10)), metadata=tenant.md) for _ in range(4)]
    calls += [stubs.donations.RefundDonation(dpb.RefundDonationRequest(donation_id=gifts[0].id, amount=usd(20),
                                                                       reason="r", refund_date=day(2026, 11, 2)),
                                             metadata=tenant.md) for _ in range(3)]
    calls.append(stubs.donations.UpdateDonation(_update(gifts[1].id, ["donor_id"], donor_id=b.id),
                                                metadata=tenant.md))
    calls.append(stubs.donations.UpdateDonation(_update(gifts[2].id, ["amount"], amount=usd(250)),
                                                metadata=tenant.md))
    calls.append(stubs.donations.UpdateDonation(_update(gifts[3].id, ["amount"], amount=usd(100, currency="EUR")),
                                                metadata=tenant.md))
    await asyncio.gather(*calls)
    kept = await admin_db.fetch("SELECT donor_id, currency, lifetime_amount, donation_count FROM crm.donor_giving "
                                "WHERE organization_id = $1::uuid ORDER BY 1, 2", tenant.org_id)
    summed = await admin_db.fetch(
        "SELECT donor_id, currency, sum(amount - refunded_amount) AS lifetime_amount, count(*) AS donation_count "
        "FROM crm.donations WHERE organization_id = $1::uuid AND refunded_amount < amount GROUP BY 1, 2 ORDER BY 1, 2",
        tenant.org_id)
    assert [tuple(r) for r in kept] == [tuple(r) for r in summed]
    assert await _totals(stubs, tenant, a.id) == {"USD": (40 + 40 + 250, 6, (1, 11)), "EUR": (100, 1, (1, 1))}
