"""Bad input: INVALID_ARGUMENT naming the field, and nothing written."""

import pytest
from givance.crm.v1 import donation_service_pb2 as dpb
from givance.crm.v1 import donor_pb2
from givance.crm.v1 import donor_service_pb2 as pb
from google.protobuf import field_mask_pb2

from tests.helpers import day, field_violations, gift, invalid, new_donor, usd


async def _counts(admin_db, org_id):
    donors = await admin_db.fetchval("SELECT count(*) FROM crm.donors WHERE organization_id = $1::uuid", org_id)
    gifts = await admin_db.fetchval("SELECT count(*) FROM crm.donations WHERE organization_id = $1::uuid", org_id)
    totals = await admin_db.fetchval("SELECT count(*) FROM crm.donor_giving WHERE organization_id = $1::uuid", org_id)
    # read audits are written in batches a moment after a read (chassis.audit): not this request's
    outbox = await admin_db.fetchval("SELECT count(*) FROM crm.outbox WHERE tenant_id = $1::uuid "
                                     "AND routing_key <> 'crm.audit.batch_recorded'", org_id)
    return donors, gifts, totals, outbox


@pytest.mark.parametrize("kwargs,field", [
    ({"email": "not-an-email"}, "donor.email"),
    ({"email": "a@b"}, "donor.email"),
    ({"phone": "12"}, "donor.phone"),
    ({"phone": "call me maybe"}, "donor.phone"),
    ({"type": 9}, "donor.type"),
    ({"spouse_first_name": "Grace"}, "donor.spouse_first_name"),
    ({"type": donor_pb2.DONOR_TYPE_INDIVIDUAL, "spouse_email": "g@example.org"}, "donor.spouse_email"),
    ({"journey_stage": "no-such-stage"}, "donor.journey_stage"),
    ({"address": donor_pb2.Address(country="USA")}, "donor.address.country"),
    ({"tags": ["ok", ""]}, "donor.tags[1]"),
    ({"first_name": "", "last_name": ""}, "donor.last_name"),
    ({"request_id": "x" * 101}, "request_id"),
])
async def test_create_donor_rejects_bad_fields_and_writes_nothing(stubs, tenant, admin_db, kwargs, field):
    before = await _counts(admin_db, tenant.org_id)
    await invalid(stubs.donors.CreateDonor(new_donor(**kwargs), metadata=tenant.md), field)
    assert await _counts(admin_db, tenant.org_id) == before


async def test_every_violation_is_reported_at_once(stubs, tenant):
    violations = field_violations(await invalid(stubs.donors.CreateDonor(
        new_donor(email="nope", phone="1", spouse_first_name="X"), metadata=tenant.md), "donor.email"))
    assert {"donor.email", "donor.phone", "donor.spouse_first_name"} <= set(violations)


@pytest.mark.parametrize("amount,field", [
    (usd(-5), "donation.amount"),
    (usd(0), "donation.amount"),
    (usd(10, 5_000_000), "donation.amount"),        # 10.005: over-precise
    (usd(10, 1), "donation.amount"),                # one nano
    (usd(5, -500_000_000), "donation.amount"),      # mixed signs
    (usd(10_000_000_000), "donation.amount"),       # beyond numeric(12,2)
    (usd(10, currency="usd"), "donation.amount.currency_code"),
    (usd(10, currency=""), "donation.amount.currency_code"),
])
async def test_record_donation_rejects_bad_amounts_and_writes_nothing(stubs, tenant, admin_db, amount, field):
    donor = (await stubs.donors.CreateDonor(new_donor(), metadata=tenant.md)).donor
    before = await _counts(admin_db, tenant.org_id)
    await invalid(stubs.donations.RecordDonation(gift(donor.id, amount), metadata=tenant.md), field)
    assert await _counts(admin_db, tenant.org_id) == before


@pytest.mark.parametrize("over,field", [
    ({"payment_method": 42}, "donation.payment_method"),
    ({"date": day(2026, 2, 30)}, "donation.date"),
    ({"donor_id": "not-a-uuid"}, "donation.donor_id"),
    ({"donor_id": ""}, "donation.donor_id"),
    ({"project_id": "nope"}, "donation.project_id"),
    ({"project_id": "00000000-0000-0000-0000-000000000009"}, "donation.project_id"),
    ({"recurring_frequency": "monthly"}, "donation.recurring_frequency"),
    ({"is_recurring": True, "recurring_frequency": "hourly"}, "donation.recurring_frequency"),
])
async def test_record_donation_rejects_bad_fields(stubs, tenant, admin_db, over, field):
    donor = (await stubs.donors.CreateDonor(new_donor(), metadata=tenant.md)).donor
    before = await _counts(admin_db, tenant.org_id)
    req = gift(donor.id)
    for k, v in over.items():
        if k == "date":
            req.donation.date.CopyFrom(v)
        else:
            setattr(req.donation, k, v)
    await invalid(stubs.donations.RecordDonation(req, metadata=tenant.md), field)
    assert await _counts(admin_db, tenant.org_id) == before


async def test_missing_amount_and_date_are_named(stubs, tenant):
    req = dpb.RecordDonationRequest()
    req.donation.donor_id = "00000000-0000-0000-0000-000000000001"
    violations = field_violations(await invalid(stubs.donations.RecordDonation(req, metadata=tenant.md),
                                                "donation.amount"))
    assert "donation.date" in violations


@pytest.mark.parametrize("req,field", [
    (pb.ListDonorsRequest(page_size=-1), "page_size"),
    (pb.ListDonorsRequest(page_token="garbage!"), "page_token"),
    (pb.ListDonorsRequest(page_token="eyJrIjogMX0"), "page_token"),
    (pb.ListDonorsRequest(order_by="email"), "order_by"),
])
async def test_list_donors_rejects_bad_paging(stubs, tenant, req, field):
    await invalid(stubs.donors.ListDonors(req, metadata=tenant.md), field)


async def test_list_donations_rejects_bad_paging(stubs, tenant):
    await invalid(stubs.donations.ListDonations(dpb.ListDonationsRequest(page_size=-3), metadata=tenant.md),
                   "page_size")
    await invalid(stubs.donations.ListDonations(dpb.ListDonationsRequest(page_token="%%%"), metadata=tenant.md),
                   "page_token")
    await invalid(stubs.donations.ListDonations(dpb.ListDonationsRequest(donor_id="x"), metadata=tenant.md),
                   "donor_id")


async def test_page_token_is_bound_to_its_filters(stubs, tenant):
    for i in range(3):
        await stubs.donors.CreateDonor(new_donor(last_name=f"P{i}", tags=["paged"]), metadata=tenant.md)
    first = await stubs.donors.ListDonors(pb.ListDonorsRequest(page_size=1, tag="paged"), metadata=tenant.md)
    assert first.next_page_token
    await invalid(stubs.donors.ListDonors(pb.ListDonorsRequest(page_size=1, page_token=first.next_page_token),
                                           metadata=tenant.md), "page_token")


async def test_update_rejects_unknown_mask_paths_and_bad_values(stubs, tenant, admin_db):
    donor = (await stubs.donors.CreateDonor(new_donor(), metadata=tenant.md)).donor
    await invalid(stubs.donors.UpdateDonor(pb.UpdateDonorRequest(
        donor=donor_pb2.Donor(id=donor.id), update_mask=field_mask_pb2.FieldMask(paths=["organization_id"])),
        metadata=tenant.md), "update_mask")
    await invalid(stubs.donors.UpdateDonor(pb.UpdateDonorRequest(
        donor=donor_pb2.Donor(id=donor.id, email="broken"), update_mask=field_mask_pb2.FieldMask(paths=["email"])),
        metadata=tenant.md), "donor.email")
    # switching to a couple is fine; adding a spouse to an individual is not
    await invalid(stubs.donors.UpdateDonor(pb.UpdateDonorRequest(
        donor=donor_pb2.Donor(id=donor.id, spouse_first_name="Grace"),
        update_mask=field_mask_pb2.FieldMask(paths=["spouse_first_name"])), metadata=tenant.md),
        "donor.spouse_first_name")
    got = (await stubs.donors.GetDonor(pb.GetDonorRequest(id=donor.id), metadata=tenant.md)).donor
    assert got.etag == donor.etag and got.email == donor.email


async def test_malformed_ids_are_invalid_not_internal(stubs, tenant):
    await invalid(stubs.donors.GetDonor(pb.GetDonorRequest(id="123"), metadata=tenant.md), "id")
    await invalid(stubs.donors.DeleteDonor(pb.DeleteDonorRequest(id=""), metadata=tenant.md), "id")
