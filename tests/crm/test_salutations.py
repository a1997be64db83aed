"""Salutations derived from both names of a couple, a donor's own overriding them, and the
rule that a donor's journey stage moves only along the journey."""

import uuid

import pytest
from givance.crm.v1 import donor_pb2
from givance.crm.v1 import donor_service_pb2 as pb
from google.protobuf import field_mask_pb2

from services.crm.domain.salutations import Names, formal, informal
from tests.helpers import invalid, new_donor

COUPLE = donor_pb2.DONOR_TYPE_COUPLE


@pytest.mark.parametrize("names, want_formal, want_informal", [
    (Names("Ada", "Lovelace"), "Ada Lovelace", "Ada"),
    (Names("", "Lovelace"), "Lovelace", "Lovelace"),
    (Names(), "Friend", "Friend"),
    (Names("John", "Smith", "Mary", "Smith", couple=True), "John and Mary Smith", "John and Mary"),
    (Names("John", "Smith", "Mary", "", couple=True), "John and Mary Smith", "John and Mary"),
    (Names("John", "Smith", "Mary", "Jones", couple=True), "John Smith and Mary Jones", "John and Mary"),
    (Names("John", "smith", "Mary", "Smith", couple=True), "John and Mary smith", "John and Mary"),
    (Names("", "Smith", "", "Smith", couple=True), "The Smith Family", "The Smith Family"),
    (Names("John", "Smith", couple=True), "John Smith", "John"),
    (Names("", "", "Mary", "Jones", couple=True), "Mary Jones", "Mary"),
    (Names("John", "", "Mary", "Jones", couple=True), "John and Mary Jones", "John and Mary"),
    # spouse names are ignored on an individual
    (Names("John", "Smith", "Mary", "Jones"), "John Smith", "John"),
])
def test_derived_salutations(names, want_formal, want_informal):
    assert formal(names) == want_formal
    assert informal(names) == want_informal


async def _create(stubs, tenant, **kw):
    return (await stubs.donors.CreateDonor(new_donor(**kw), metadata=tenant.md)).donor


def _update(stubs, tenant, donor, *paths):
    return stubs.donors.UpdateDonor(pb.UpdateDonorRequest(
        donor=donor, update_mask=field_mask_pb2.FieldMask(paths=list(paths))), metadata=tenant.md)


async def test_couple_salutations_follow_name_changes(stubs, tenant):
    d = await _create(stubs, tenant, type=COUPLE, first_name="John", last_name="Smith", spouse_first_name="Mary",
                      spouse_last_name="Jones")
    assert (d.formal_salutation, d.informal_salutation) == ("John Smith and Mary Jones", "John and Mary")
    d.spouse_last_name = "Smith"
    d = (await _update(stubs, tenant, d, "spouse_last_name")).donor
    assert d.formal_salutation == "John and Mary Smith"
    got = (await stubs.donors.GetDonor(pb.GetDonorRequest(id=d.id), metadata=tenant.md)).donor
    assert got.formal_salutation == "John and Mary Smith" and got.informal_salutation == "John and Mary"


async def test_own_salutation_overrides_and_round_trip_keeps_derived(stubs, tenant, admin_db):
    d = await _create(stubs, tenant, first_name="Robert", last_name="Brown", informal_salutation="Bob")
    assert d.informal_salutation == "Bob" and d.formal_salutation == "Robert Brown"
    # Writing the whole donor back (derived formal value included) keeps formal derived.
    d = (await _update(stubs, tenant, d)).donor
    stored = await admin_db.fetchrow("SELECT formal_salutation, informal_salutation FROM crm.donors WHERE id = $1",
                                     uuid.UUID(d.id))
    assert stored["formal_salutation"] is None and stored["informal_salutation"] == "Bob"
    d.last_name = "Browning"
    d = (await _update(stubs, tenant, d, "last_name")).donor
    assert d.formal_salutation == "Robert Browning" and d.informal_salutation == "Bob"
    d.informal_salutation = ""
    d = (await _update(stubs, tenant, d, "informal_salutation")).donor
    assert d.informal_salutation == "Robert"


async def test_overlong_salutation_is_invalid_and_nothing_written(stubs, tenant):
    d = await _create(stubs, tenant)
    d.formal_salutation = "x" * 301
    await invalid(_update(stubs, tenant, d, "formal_salutation"), "donor.formal_salutation")
    got = (await stubs.donors.GetDonor(pb.GetDonorRequest(id=d.id), metadata=tenant.md)).donor
    assert got.formal_salutation == "Ada Lovelace" and got.etag == d.etag


async def test_update_cannot_jump_journey_stage(stubs, tenant):
    d = await _create(stubs, tenant, journey_stage="prospect")
    d.journey_stage = "major_donor"
    await invalid(_update(stubs, tenant, d, "journey_stage"), "donor.journey_stage")
    # Sending the stage it already has is fine (a full write-back).
    d.journey_stage = "prospect"
    d.notes = "met at the gala"
    d = (await _update(stubs, tenant, d)).donor
    assert d.journey_stage == "prospect" and d.notes == "met at the gala"
