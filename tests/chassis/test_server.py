"""Graceful shutdown: a stopping server finishes the calls it has, then refuses new ones."""

import asyncio

import grpc
from givance.crm.v1 import donor_service_pb2 as pb
from givance.crm.v1 import donor_service_pb2_grpc

from chassis.server import Registration, ServiceHost


class SlowDonors(donor_service_pb2_grpc.DonorServiceServicer):
    def __init__(self):
        self.started = asyncio.Event()

    async def GetDonor(self, request, ctx):
        self.started.set()
        await asyncio.sleep(0.5)
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
        await asyncio.sleep(0.1)
        assert isinstance(await in_flight, pb.GetDonorResponse)  # finished, not cut off
        await stopping
        try:
            await stub.GetDonor(pb.GetDonorRequest(id="x"), metadata=tenant.md, timeout=2)
            raise AssertionError("a stopped server answered")
        except grpc.aio.AioRpcError as e:
            assert e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
