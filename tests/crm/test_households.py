"""Households: derived name and salutations, primary member, giving totals (hard and soft, a
gift counted once), moving donors with history, merges and deletes, events, bad input by
field, tenancy."""

import grpc
import pytest
from givance.crm.v1 import donation_pb2, household_pb2, household_service_pb2_grpc
from givance.crm.v1 import donor_service_pb2 as pb
from givance.crm.v1 import household_service_pb2 as hpb
from google.protobuf import field_mask_pb2

from tests.helpers import fails, gift, invalid, new_donor, usd


@pytest.fixture
def households(stubs):
    return household_service_pb2_grpc.HouseholdServiceStub(stubs.crm_channel)


async def _donor(stubs, tenant, first, last):
    return (await stubs.donors.CreateDonor(new_donor(first_name=first, last_name=last), metadata=tenant.md)).donor.id


def _credit(donor_id, units):
    return donation_pb2.SoftCredit(donor_id=donor_id, role=donation_pb2.SOFT_CREDIT_ROLE_SPOUSE, amount=usd(units))


async def _create(households, tenant, ids, **kw):
    return (await households.CreateHousehold(hpb.CreateHouseholdRequest(
        household=household_pb2.Household(**kw), donor_ids=ids), metadata=tenant.md)).household


async def test_a_household_derives_its_name_and_sums_giving_once(stubs, households, tenant, admin_db):
    ngozi, emeka, tomas = [await _donor(stubs, tenant, f, last) for f, last in
                           (("Ngozi", "Okafor"), ("Emeka", "Okafor"), ("Tomas", "Reyes"))]
    h = await _create(households, tenant, [ngozi, emeka])
    assert (h.name, h.name_derived, h.formal_salutation, h.informal_salutation, h.primary_donor_id) == (
        "Okafor Household", True, "Ngozi and Emeka Okafor", "Ngozi and Emeka", ngozi)
    await stubs.donations.RecordDonation(gift(ngozi, usd(100), soft_credits=[_credit(emeka, 100)]), metadata=tenant.md)
    await stubs.donations.RecordDonation(gift(tomas, usd(50), soft_credits=[_credit(emeka, 50), _credit(ngozi, 30)]),
                                         metadata=tenant.md)
    h = (await households.GetHousehold(hpb.GetHouseholdRequest(id=h.id), metadata=tenant.md)).household
    assert [(t.hard_amount.units, t.soft_amount.units, t.combined_amount.units) for t in h.giving_totals] == [
        (100, 50, 150)]
    kinds = [r["routing_key"] for r in await admin_db.fetch(
        "SELECT routing_key FROM crm.outbox WHERE tenant_id = $1::uuid AND routing_key LIKE 'crm.household.%' "
        "ORDER BY id", tenant.org_id)]
    assert kinds == ["crm.household.member_joined", "crm.household.member_joined", "crm.household.created"]

    # Emeka moves in with Tomas: the history keeps both stays; Ngozi's household is hers alone.
    other = await _create(households, tenant, [tomas], name="Reyes Family Foundation")
    moved = await households.MoveDonorToHousehold(hpb.MoveDonorToHouseholdRequest(donor_id=emeka,
                                                                                  household_id=other.id),
                                                  metadata=tenant.md)
    assert [m.donor_id for m in moved.household.members] == [tomas, emeka]
    assert moved.household.name == "Reyes Family Foundation" and not moved.household.name_derived
    assert moved.household.formal_salutation == "Tomas Reyes and Emeka Okafor"
    assert [m.donor_id for m in moved.previous_household.members] == [ngozi]
    # Emeka's credit on Tomas's gift is now inside the household: it counts as hard only (Tomas's).
    assert [(t.hard_amount.units, t.soft_amount.units) for t in moved.household.giving_totals] == [(50, 100)]
    history = (await households.ListHouseholdMemberships(hpb.ListHouseholdMembershipsRequest(donor_id=emeka),
                                                         metadata=tenant.md)).memberships
    assert [(m.household_id, m.leave_reason) for m in history] == [(other.id, ""), (h.id, "moved")]

    # The primary member leaves: the next member is primary.
    left = await households.MoveDonorToHousehold(hpb.MoveDonorToHouseholdRequest(donor_id=tomas), metadata=tenant.md)
    assert not left.HasField("household") and left.previous_household.primary_donor_id == emeka


async def test_update_merge_and_delete(stubs, households, tenant):
    a, b, c = [await _donor(stubs, tenant, f, "Alder") for f in ("Ann", "Ben", "Cal")]
    h = await _create(households, tenant, [a, b, c], primary_donor_id=b)
    assert h.primary_donor_id == b and h.informal_salutation == "Ben, Ann and Cal"
    u = (await households.UpdateHousehold(hpb.UpdateHouseholdRequest(
        household=household_pb2.Household(id=h.id, etag=h.etag, name="The Alders"),
        update_mask=field_mask_pb2.FieldMask(paths=["name"])), metadata=tenant.md)).household
    assert (u.name, u.name_derived) == ("The Alders", False)
    await fails(households.UpdateHousehold(hpb.UpdateHouseholdRequest(
        household=household_pb2.Household(id=h.id, etag=h.etag, name="x"),
        update_mask=field_mask_pb2.FieldMask(paths=["name"])), metadata=tenant.md), grpc.StatusCode.ABORTED)
    outsider = await _donor(stubs, tenant, "Out", "Sider")
    await invalid(households.UpdateHousehold(hpb.UpdateHouseholdRequest(
        household=household_pb2.Household(id=h.id, primary_donor_id=outsider),
        update_mask=field_mask_pb2.FieldMask(paths=["primary_donor_id"])), metadata=tenant.md),
        "household.primary_donor_id")
    back = (await households.UpdateHousehold(hpb.UpdateHouseholdRequest(
        household=household_pb2.Household(id=h.id, name=""), update_mask=field_mask_pb2.FieldMask(paths=["name"])),
        metadata=tenant.md)).household
    assert (back.name, back.name_derived) == ("Alder Household", True)

    donors = {d: (await stubs.donors.GetDonor(pb.GetDonorRequest(id=d), metadata=tenant.md)).donor for d in (a, b, c)}
    await stubs.donors.MergeDonors(pb.MergeDonorsRequest(survivor_id=a, merged_id=b, survivor_etag=donors[a].etag,
                                                         merged_etag=donors[b].etag), metadata=tenant.md)
    await stubs.donors.DeleteDonor(pb.DeleteDonorRequest(id=c), metadata=tenant.md)
    after = (await households.GetHousehold(hpb.GetHouseholdRequest(id=h.id), metadata=tenant.md)).household
    assert [m.donor_id for m in after.members] == [a] and after.primary_donor_id == a
    history = (await households.ListHouseholdMemberships(hpb.ListHouseholdMembershipsRequest(household_id=h.id),
                                                         metadata=tenant.md)).memberships
    assert sorted(m.leave_reason for m in history) == ["", "deleted", "merged"]


async def test_bad_input_is_named_by_field(stubs, households, tenant, other_tenant):
    mine = await _donor(stubs, tenant, "Ann", "Alder")
    theirs = await _donor(stubs, other_tenant, "Zed", "Zulu")
    await invalid(households.CreateHousehold(hpb.CreateHouseholdRequest(), metadata=tenant.md), "donor_ids")
    await invalid(households.CreateHousehold(hpb.CreateHouseholdRequest(donor_ids=["nope"]), metadata=tenant.md),
                  "donor_ids[0]")
    await invalid(households.CreateHousehold(hpb.CreateHouseholdRequest(donor_ids=[mine, theirs]),
                                             metadata=tenant.md), "donor_ids[1]")
    await invalid(households.CreateHousehold(hpb.CreateHouseholdRequest(
        donor_ids=[mine], household=household_pb2.Household(name="n" * 201)), metadata=tenant.md), "household.name")
    await invalid(households.CreateHousehold(hpb.CreateHouseholdRequest(
        donor_ids=[mine], household=household_pb2.Household(primary_donor_id=theirs)), metadata=tenant.md),
        "household.primary_donor_id")
    await invalid(households.ListHouseholdMemberships(hpb.ListHouseholdMembershipsRequest(), metadata=tenant.md),
                  "household_id")
    assert list((await households.ListHouseholds(hpb.ListHouseholdsRequest(), metadata=tenant.md)).households) == []


async def test_another_tenants_household_is_not_found(stubs, households, tenant, other_tenant):
    mine = await _create(households, tenant, [await _donor(stubs, tenant, "Ann", "Alder")])
    theirs = await _donor(stubs, other_tenant, "Zed", "Zulu")
    await fails(households.GetHousehold(hpb.GetHouseholdRequest(id=mine.id), metadata=other_tenant.md),
                grpc.StatusCode.NOT_FOUND)
    await fails(households.UpdateHousehold(hpb.UpdateHouseholdRequest(
        household=household_pb2.Household(id=mine.id, name="x"), update_mask=field_mask_pb2.FieldMask(paths=["name"])),
        metadata=other_tenant.md), grpc.StatusCode.NOT_FOUND)
    await invalid(households.MoveDonorToHousehold(hpb.MoveDonorToHouseholdRequest(donor_id=theirs,
                                                                                 household_id=mine.id),
                                                  metadata=other_tenant.md), "household_id")
    listed = await households.ListHouseholds(hpb.ListHouseholdsRequest(), metadata=other_tenant.md)
    assert list(listed.households) == []
    assert list((await households.ListHouseholdMemberships(hpb.ListHouseholdMembershipsRequest(
        household_id=mine.id), metadata=other_tenant.md)).memberships) == []
