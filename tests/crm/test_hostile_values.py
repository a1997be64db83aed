"""Hostile values are field errors at the edge, never INTERNAL (issue 9, item 8): the cases seen
from outside, through the API. tests/fuzz covers every method with generated values."""

from __future__ import annotations

import uuid

from givance.crm.v1 import donation_service_pb2 as dpb
from givance.crm.v1 import donor_pb2
from givance.crm.v1 import donor_service_pb2 as pb
from google.protobuf import field_mask_pb2, timestamp_pb2

from tests.helpers import invalid, new_donor


async def test_nul_characters_are_refused_naming_the_field(stubs, tenant):
    await invalid(stubs.donors.SearchDonors(pb.SearchDonorsRequest(query="ada\x00"), metadata=tenant.md), "query")
    err = await invalid(stubs.donors.CreateDonor(new_donor(first_name="A\x00", tags=["ok", "b\x00d"]),
                                                 metadata=tenant.md), "donor.first_name")
    assert "NUL" in err.details() and "donor.tags[1]" in err.details()
    await invalid(stubs.donors.UpdateDonor(pb.UpdateDonorRequest(
        donor=donor_pb2.Donor(id=f"{uuid.uuid4()}\x00", notes="x"),
        update_mask=field_mask_pb2.FieldMask(paths=["notes"])), metadata=tenant.md), "donor.id")
    listed = await stubs.donors.ListDonors(pb.ListDonorsRequest(), metadata=tenant.md)
    assert list(listed.donors) == [], "a refused request wrote something"


async def test_out_of_range_timestamps_are_refused_naming_the_field(stubs, tenant):
    for bad in (timestamp_pb2.Timestamp(seconds=0, nanos=-1), timestamp_pb2.Timestamp(seconds=2**62)):
        await invalid(stubs.donations.MarkReceiptsSent(
            dpb.MarkReceiptsSentRequest(donation_ids=[str(uuid.uuid4())], send_time=bad), metadata=tenant.md),
            "send_time")
