"""Resource limits on every input (issue 9, item 6): free-text fields and custom_fields have
byte limits (INVALID_ARGUMENT naming the field), import batches end at a byte bound as well
as a row count, a client stream that goes quiet is ended, and an oversize request message is
RESOURCE_EXHAUSTED. The limits are listed in docs/crm.md#limits."""

from __future__ import annotations

import asyncio
import itertools

import grpc
import pytest
from givance.crm.v1 import donor_pb2, donor_service_pb2_grpc
from givance.crm.v1 import donor_service_pb2 as pb
from google.protobuf import struct_pb2

from tests.helpers import error_reason, fails, gift, invalid, new_donor


def _custom(size: int) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update({"blob": "x" * size})
    return s


@pytest.mark.parametrize("kwargs,field", [
    ({"custom_fields": _custom(17 * 1024)}, "donor.custom_fields"),
    ({"custom_fields": _custom(3 * 1024 * 1024)}, "donor.custom_fields"),  # the 3 MB accepted before
    ({"notes": "é" * 5001}, "donor.notes"),  # 5,001 characters, 10,002 bytes
    ({"type": donor_pb2.DONOR_TYPE_COUPLE, "spouse_first_name": "S" * 201}, "donor.spouse_first_name"),
    ({"type": donor_pb2.DONOR_TYPE_COUPLE, "spouse_last_name": "S" * 201}, "donor.spouse_last_name"),
    ({"ai_classification": "c" * 201}, "donor.ai_classification"),
])
async def test_oversize_donor_fields_are_invalid_naming_the_field(stubs, tenant, kwargs, field):
    await invalid(stubs.donors.CreateDonor(new_donor(**kwargs), metadata=tenant.md), field)


async def test_fields_at_their_limits_are_accepted(stubs, tenant):
    donor = (await stubs.donors.CreateDonor(new_donor(
        custom_fields=_custom(16 * 1024 - 20), notes="é" * 5000, type=donor_pb2.DONOR_TYPE_COUPLE,
        spouse_first_name="S" * 200, ai_classification="c" * 200), metadata=tenant.md)).donor
    assert len(donor.notes) == 5000 and len(donor.custom_fields["blob"]) == 16 * 1024 - 20


async def test_oversize_donation_notes_are_invalid(stubs, tenant):
    donor = (await stubs.donors.CreateDonor(new_donor(), metadata=tenant.md)).donor
    await invalid(stubs.donations.RecordDonation(gift(donor.id, notes="n" * 10_001), metadata=tenant.md),
                  "donation.notes")


async def test_an_import_row_over_a_limit_is_rejected_alone(stubs, tenant):
    rows = [donor_pb2.Donor(external_id="big", first_name="Big", custom_fields=_custom(17 * 1024)),
            donor_pb2.Donor(external_id="small", first_name="Small")]
    requests = [pb.ImportDonorsRequest(rows=pb.ImportDonorRows(donors=rows))]
    final = [r async for r in stubs.donors.ImportDonors(iter(requests), metadata=tenant.md)][-1]
    assert (final.created, final.rejected) == (1, 1)


async def test_import_batches_end_at_a_byte_bound_as_well_as_a_row_count(stubs, tenant):
    # 1,000 rows of ~9 KB: far fewer rows than a batch holds, but ~9 MB: at least three batches.
    notes = "n" * 9000
    requests = [pb.ImportDonorsRequest(rows=pb.ImportDonorRows(donors=[
        donor_pb2.Donor(external_id=f"b-{i + j}", first_name="Batch", notes=notes) for j in range(100)]))
        for i in range(0, 1000, 100)]
    progress = [r async for r in stubs.donors.ImportDonors(iter(requests), metadata=tenant.md)]
    assert progress[-1].done and progress[-1].created == 1000
    batches = progress[:-1]
    assert len(batches) >= 3, [b.rows_read for b in batches]
    ends = [0, *(b.rows_read for b in batches)]
    sizes = [b - a for a, b in itertools.pairwise(ends)]
    assert max(sizes) <= 500, sizes


@pytest.fixture
async def quick_idle_crm(env, identity_host):
    from services.crm.__main__ import build
    from services.crm.settings import CrmSettings

    host = await build(CrmSettings(port=0, grace_seconds=1, stream_idle_seconds=0.5,
                                   identity_address=f"127.0.0.1:{identity_host.bound_port}"))
    await host.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{host.bound_port}")
    yield donor_service_pb2_grpc.DonorServiceStub(channel)
    await channel.close()
    await host.stop()


@pytest.mark.server_errors("outbox relay", "consumer", "revocation")
async def test_an_import_whose_client_goes_quiet_is_ended(quick_idle_crm, stubs):
    tenant = await stubs.sign_up()
    never = asyncio.Event()

    async def requests():
        yield pb.ImportDonorsRequest(csv_chunk=b"external_id,first_name\nq-1,Quiet\nq-2,")
        await never.wait()  # and then nothing: the client neither sends nor closes

    call = quick_idle_crm.ImportDonors(requests(), metadata=tenant.md, timeout=60)
    err = await fails(_drain(call), grpc.StatusCode.DEADLINE_EXCEEDED)
    assert error_reason(err) == "STREAM_IDLE", err.details()
    never.set()


async def _drain(call):
    return [r async for r in call]


async def test_an_oversize_request_message_is_resource_exhausted(stubs, tenant):
    request = new_donor(notes="n" * (5 * 1024 * 1024))
    await fails(stubs.donors.CreateDonor(request, metadata=tenant.md), grpc.StatusCode.RESOURCE_EXHAUSTED)
