"""Slow readers cannot starve the pool (issue 9, item 7): an export that waits for its client
holds no pooled connection, so more unread exports than the pool has connections leave crm
answering everyone else."""

from __future__ import annotations

import grpc
import pytest
from givance.crm.v1 import donor_pb2, donor_service_pb2_grpc
from givance.crm.v1 import donor_service_pb2 as pb

from tests.helpers import new_donor

POOL = 2
DONORS = 1200  # ~11 MB an export: far more than a stream's flow-control window, so the server waits


@pytest.fixture
async def small_pool_crm(env, identity_host):
    from services.crm.__main__ import build
    from services.crm.settings import CrmSettings

    host = await build(CrmSettings(port=0, grace_seconds=1, db_pool_size=POOL,
                                   identity_address=f"127.0.0.1:{identity_host.bound_port}"))
    await host.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{host.bound_port}")
    yield donor_service_pb2_grpc.DonorServiceStub(channel)
    await channel.close()
    await host.stop()


@pytest.mark.server_errors("outbox relay", "consumer", "revocation")
async def test_unread_exports_beyond_the_pool_size_do_not_starve_other_calls(small_pool_crm, stubs):
    donors = small_pool_crm
    tenant = await stubs.sign_up()
    notes = "n" * 9000
    batch = [pb.ImportDonorsRequest(rows=pb.ImportDonorRows(donors=[
        donor_pb2.Donor(external_id=f"slow-{i + j}", first_name="Slow", last_name=f"Reader{i + j}", notes=notes)
        for j in range(100)])) for i in range(0, DONORS, 100)]
    summary = [r async for r in donors.ImportDonors(iter(batch), metadata=tenant.md)][-1]
    assert summary.created == DONORS
    one = await donors.CreateDonor(new_donor(first_name="Still", last_name="Answered"), metadata=tenant.md)

    # More exports than the pool has connections, each read once and then left waiting.
    exports = []
    for _ in range(POOL + 2):
        call = donors.ExportDonors(pb.ExportDonorsRequest(chunk_size=50), metadata=tenant.md)
        assert len((await call.read()).donors) == 50
        exports.append(call)
    # Everyone else is still answered, well within the pool's acquire timeout.
    got = await donors.GetDonor(pb.GetDonorRequest(id=one.donor.id), metadata=tenant.md, timeout=5)
    assert got.donor.id == one.donor.id

    # A slow reader still gets every donor, once.
    for call in exports:
        ids = []
        while (chunk := await call.read()) is not grpc.aio.EOF:
            ids += [d.id for d in chunk.donors]
        assert len(ids) == DONORS + 1 - 50 and len(set(ids)) == len(ids) and one.donor.id in ids
