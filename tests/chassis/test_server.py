"""Graceful shutdown: a stopping server finishes the calls it has, then refuses new ones."""

import asyncio

import grpc
from givance.crm.v1 import donor_service_pb2 as pb
from givance.crm.v1 import donor_service_pb2_grpc

from chassis.server import Registration, ServiceHost
from tests.helpers import eventually, fails


class SlowDonors(donor_service_pb2_grpc.DonorServiceServicer):
    """GetDonor answers only once the test releases it; the other methods are unimplemented."""

    def __init__(self):
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def GetDonor(self, request, ctx):
        self.started.set()
        await self.release.wait()
        return pb.GetDonorResponse()


async def test_stop_lets_in_flight_calls_finish(crm_host, tenant):
    servicer = SlowDonors()
    host = ServiceHost(name="crm", host="127.0.0.1", port=0, verifier=crm_host.verifier, grace_seconds=5,
                       registrations=[Registration("givance.crm.v1.DonorService",
                                                   donor_service_pb2_grpc.add_DonorServiceServicer_to_server,
                                                   servicer)])
    port = await host.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        stub = donor_service_pb2_grpc.DonorServiceStub(ch)
        in_flight = asyncio.ensure_future(stub.GetDonor(pb.GetDonorRequest(id="x"), metadata=tenant.md))
        await servicer.started.wait()
        stopping = asyncio.ensure_future(host.stop())

        async def refuses_new_calls() -> bool:
            # ListDonors is unimplemented here: UNIMPLEMENTED while serving, UNAVAILABLE once stopping.
            err = await fails(stub.ListDonors(pb.ListDonorsRequest(), metadata=tenant.md, timeout=2))
            return err.code() == grpc.StatusCode.UNAVAILABLE

        await eventually(refuses_new_calls, what="the stopping server to refuse new calls")
        assert not in_flight.done() and not stopping.done()  # the call it had is still running
        servicer.release.set()
        assert isinstance(await in_flight, pb.GetDonorResponse)  # finished, not cut off
        await stopping
        err = await fails(stub.GetDonor(pb.GetDonorRequest(id="x"), metadata=tenant.md, timeout=2))
        assert err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED), err.details()
