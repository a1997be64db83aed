import grpc
import pytest
from givance.crm.v1 import donor_pb2
from givance.crm.v1 import donor_service_pb2 as pb

from tests.helpers import new_donor


async def test_create_get_roundtrip_normalizes_email_and_phone(stubs, tenant):
    created = (await stubs.donors.CreateDonor(
        new_donor(email="Ada@Example.org", phone="(202) 555-0143", tags=["major", "board"],
                  address=donor_pb2.Address(city="Washington", country="us")), metadata=tenant.md)).donor
    assert created.phone == "+12025550143"
    assert created.address.country == "US"
    got = (await stubs.donors.GetDonor(pb.GetDonorRequest(id=created.id), metadata=tenant.md)).donor
    assert got.id == created.id and got.organization_id == tenant.org_id
    assert list(got.tags) == ["major", "board"]
    assert got.type == donor_pb2.DONOR_TYPE_INDIVIDUAL


async def test_unknown_donor_is_not_found(stubs, tenant):
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stubs.donors.GetDonor(pb.GetDonorRequest(id="00000000-0000-0000-0000-000000000001"), metadata=tenant.md)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
