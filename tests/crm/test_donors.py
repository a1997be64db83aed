import uuid

import grpc
from givance.crm.v1 import donor_pb2
from givance.crm.v1 import donor_service_pb2 as pb
from google.protobuf import field_mask_pb2

from tests.helpers import error_reason, fails, new_donor


async def _create(stubs, tenant, **kw):
    return (await stubs.donors.CreateDonor(new_donor(**kw), metadata=tenant.md)).donor


async def test_create_get_roundtrip_normalizes_email_and_phone(stubs, tenant):
    created = await _create(stubs, tenant, email="Ada@Example.org", phone="(202) 555-0143", tags=["major", "board"],
                            address=donor_pb2.Address(city="Washington", country="us"))
    assert created.phone == "+12025550143"
    assert created.address.country == "US"
    got = (await stubs.donors.GetDonor(pb.GetDonorRequest(id=created.id), metadata=tenant.md)).donor
    assert got.id == created.id and got.organization_id == tenant.org_id
    assert list(got.tags) == ["major", "board"]
    assert got.type == donor_pb2.DONOR_TYPE_INDIVIDUAL


async def test_couple_keeps_spouse_and_custom_fields(stubs, tenant):
    couple = await _create(stubs, tenant, type=donor_pb2.DONOR_TYPE_COUPLE, spouse_first_name="Grace",
                           spouse_last_name="Hopper", spouse_email="grace@example.org",
                           phone="+44 20 7946 0958", external_id="ext-1")
    assert couple.spouse_first_name == "Grace" and couple.phone == "+442079460958"
    got = (await stubs.donors.GetDonor(pb.GetDonorRequest(id=couple.id), metadata=tenant.md)).donor
    assert got.type == donor_pb2.DONOR_TYPE_COUPLE and got.external_id == "ext-1"


async def test_external_id_is_unique_per_organization(stubs, tenant, other_tenant):
    await _create(stubs, tenant, external_id="crm-42")
    await fails(_create(stubs, tenant, external_id="crm-42"), grpc.StatusCode.ALREADY_EXISTS)
    await _create(stubs, other_tenant, external_id="crm-42")  # another tenant may use it


async def test_unknown_donor_is_not_found(stubs, tenant):
    await fails(stubs.donors.GetDonor(pb.GetDonorRequest(id=str(uuid.uuid4())), metadata=tenant.md),
                grpc.StatusCode.NOT_FOUND)


async def test_create_with_request_id_is_idempotent(stubs, tenant, admin_db):
    rid = uuid.uuid4().hex
    first = await _create(stubs, tenant, request_id=rid, last_name="Once")
    again = await _create(stubs, tenant, request_id=rid, last_name="Once")
    assert again.id == first.id
    n = await admin_db.fetchval("SELECT count(*) FROM crm.donors WHERE create_request_id = $1", rid)
    assert n == 1


async def test_update_with_mask_and_etag(stubs, tenant):
    donor = await _create(stubs, tenant, email="old@example.org", notes="keep me")
    updated = (await stubs.donors.UpdateDonor(pb.UpdateDonorRequest(
        donor=donor_pb2.Donor(id=donor.id, etag=donor.etag, email="new@example.org", notes="ignored"),
        update_mask=field_mask_pb2.FieldMask(paths=["email"])), metadata=tenant.md)).donor
    assert updated.email == "new@example.org" and updated.notes == "keep me"
    assert updated.etag != donor.etag
    e = await fails(stubs.donors.UpdateDonor(pb.UpdateDonorRequest(  # the old etag is stale now
        donor=donor_pb2.Donor(id=donor.id, etag=donor.etag, notes="lost update"),
        update_mask=field_mask_pb2.FieldMask(paths=["notes"])), metadata=tenant.md), grpc.StatusCode.ABORTED)
    assert error_reason(e) == "ETAG_MISMATCH"
    got = (await stubs.donors.GetDonor(pb.GetDonorRequest(id=donor.id), metadata=tenant.md)).donor
    assert got.notes == "keep me"


async def test_update_to_couple_then_back_requires_clearing_spouse(stubs, tenant):
    donor = await _create(stubs, tenant)
    couple = (await stubs.donors.UpdateDonor(pb.UpdateDonorRequest(
        donor=donor_pb2.Donor(id=donor.id, type=donor_pb2.DONOR_TYPE_COUPLE, spouse_first_name="Grace"),
        update_mask=field_mask_pb2.FieldMask(paths=["type", "spouse_first_name"])), metadata=tenant.md)).donor
    assert couple.spouse_first_name == "Grace"
    await fails(stubs.donors.UpdateDonor(pb.UpdateDonorRequest(
        donor=donor_pb2.Donor(id=donor.id, type=donor_pb2.DONOR_TYPE_INDIVIDUAL),
        update_mask=field_mask_pb2.FieldMask(paths=["type"])), metadata=tenant.md), grpc.StatusCode.INVALID_ARGUMENT)


async def test_soft_delete_hides_the_donor_but_keeps_the_row(stubs, tenant, admin_db):
    donor = await _create(stubs, tenant, tags=["gone"])
    await fails(stubs.donors.DeleteDonor(pb.DeleteDonorRequest(id=donor.id, etag='W/"999"'), metadata=tenant.md),
                grpc.StatusCode.ABORTED)
    deleted = (await stubs.donors.DeleteDonor(pb.DeleteDonorRequest(id=donor.id, etag=donor.etag),
                                              metadata=tenant.md)).donor
    assert deleted.HasField("delete_time")
    await fails(stubs.donors.GetDonor(pb.GetDonorRequest(id=donor.id), metadata=tenant.md), grpc.StatusCode.NOT_FOUND)
    listed = await stubs.donors.ListDonors(pb.ListDonorsRequest(tag="gone"), metadata=tenant.md)
    assert list(listed.donors) == []
    assert await admin_db.fetchval("SELECT deleted_at IS NOT NULL FROM crm.donors WHERE id = $1::uuid", donor.id)


async def test_list_pages_through_everything_once_in_order(stubs, tenant):
    ids = [(await _create(stubs, tenant, last_name=f"Name{i:02d}", tags=["walk"])).id for i in range(7)]
    seen, token = [], ""
    while True:
        page = await stubs.donors.ListDonors(pb.ListDonorsRequest(page_size=3, page_token=token, tag="walk"),
                                             metadata=tenant.md)
        assert len(page.donors) <= 3
        seen += [d.id for d in page.donors]
        token = page.next_page_token
        if not token:
            break
    assert seen == list(reversed(ids))  # newest first by default
    by_name = await stubs.donors.ListDonors(pb.ListDonorsRequest(tag="walk", order_by="last_name"),
                                            metadata=tenant.md)
    assert [d.last_name for d in by_name.donors] == [f"Name{i:02d}" for i in range(7)]
    desc, token, names = None, "", []
    while True:
        desc = await stubs.donors.ListDonors(pb.ListDonorsRequest(tag="walk", order_by="last_name desc",
                                                                  page_size=2, page_token=token), metadata=tenant.md)
        names += [d.last_name for d in desc.donors]
        token = desc.next_page_token
        if not token:
            break
    assert names == [f"Name{i:02d}" for i in reversed(range(7))]


async def test_list_filters_by_stage_tag_and_email(stubs, tenant):
    a = await _create(stubs, tenant, journey_stage="cultivation", tags=["f1"], email="f-one@example.org")
    await _create(stubs, tenant, journey_stage="prospect", tags=["f1"])
    by_stage = await stubs.donors.ListDonors(pb.ListDonorsRequest(journey_stage="cultivation", tag="f1"),
                                             metadata=tenant.md)
    assert [d.id for d in by_stage.donors] == [a.id]
    by_email = await stubs.donors.ListDonors(pb.ListDonorsRequest(email="F-ONE@example.org"), metadata=tenant.md)
    assert [d.id for d in by_email.donors] == [a.id]


async def test_page_size_zero_means_default_and_large_is_capped(stubs, tenant):
    for i in range(3):
        await _create(stubs, tenant, tags=["cap"], last_name=f"C{i}")
    resp = await stubs.donors.ListDonors(pb.ListDonorsRequest(page_size=0, tag="cap"), metadata=tenant.md)
    assert len(resp.donors) == 3 and resp.next_page_token == ""
    resp = await stubs.donors.ListDonors(pb.ListDonorsRequest(page_size=1_000_000, tag="cap"), metadata=tenant.md)
    assert len(resp.donors) == 3
