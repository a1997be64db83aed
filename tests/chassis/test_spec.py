"""chassis.spec: a service declared once, built by the chassis."""

import asyncio

import grpc
import pytest
from givance.crm.v1 import donor_service_pb2, donor_service_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from chassis.auth import JwksCache, TokenVerifier
from chassis.spec import Built, ServiceSpec, listed_services, load, registration
from services.crm.settings import CrmSettings


class Donors(donor_service_pb2_grpc.DonorServiceServicer):
    def __init__(self, own):
        self.own = own


def test_a_servicer_registers_under_the_name_its_generated_base_declares():
    reg = registration(Donors(None))
    assert reg.full_name == donor_service_pb2.DESCRIPTOR.services_by_name["DonorService"].full_name
    assert reg.full_name == "givance.crm.v1.DonorService"
    assert reg.add is donor_service_pb2_grpc.add_DonorServiceServicer_to_server


def test_a_servicer_without_a_generated_base_is_refused():
    class Loose:
        pass

    with pytest.raises(TypeError, match="Loose"):
        registration(Loose())


@pytest.mark.parametrize("name", listed_services())
async def test_every_listed_service_serves_what_its_spec_declares(hosts, name):
    spec, host = load(name), hosts[name]
    assert spec.name == name and host.name == name
    names = [r.full_name for r in host.registrations]
    assert names and all(n.startswith(f"givance.{name}.v1.") for n in names), names
    async with grpc.aio.insecure_channel(f"127.0.0.1:{host.bound_port}") as ch:
        for full_name in names:
            resp = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=full_name))
            assert resp.status == health_pb2.HealthCheckResponse.SERVING, full_name


@pytest.mark.parametrize("name", listed_services())
async def test_the_queues_of_every_spec_are_declared_before_the_services_start(env, amqp_channel, name):
    for sub in load(name).subscriptions:
        queue = await amqp_channel.declare_queue(sub.queue, passive=True)
        assert queue.name == sub.queue


class Ticker:
    """A worker of the service's own: runs beside the server, stopped gracefully at stop."""

    def __init__(self):
        self.running, self.stopped = asyncio.Event(), False

    async def run(self):
        self.running.set()
        await asyncio.Event().wait()

    async def stop(self):
        self.stopped = True


async def no_keys() -> list[dict]:
    return []


async def test_a_service_adds_its_own_dependencies_and_workers(env):
    seen: dict[str, object] = {}

    async def dependencies(b: Built) -> Ticker:
        seen["db"] = b.db  # built before the hook runs
        return Ticker()

    def servicers(b: Built) -> list[object]:
        seen["verifier"] = b.verifier
        return [Donors(b.own)]

    spec = ServiceSpec(name="crm", settings=CrmSettings, servicers=servicers, dependencies=dependencies,
                       background=lambda b: [b.own])
    verifier = TokenVerifier(JwksCache(no_keys))
    host = await spec.build(CrmSettings(port=0, grace_seconds=1), verifier=verifier)
    ticker = host.registrations[0].servicer.own
    assert isinstance(ticker, Ticker) and seen["db"] is not None and seen["verifier"] is verifier
    await host.start()
    try:
        await asyncio.wait_for(ticker.running.wait(), 10)
    finally:
        await host.stop()
    assert ticker.stopped
