"""A database outage is UNAVAILABLE (retryable), never INTERNAL, readiness (not liveness) turns
NOT_SERVING, and the service recovers by itself when PostgreSQL answers again (issue 9, items
11 and 16). crm's connections go through a TCP
proxy that the test cuts; identity and RabbitMQ stay up."""

from __future__ import annotations

import grpc
import pytest
from givance.crm.v1 import donor_service_pb2 as pb
from givance.crm.v1 import donor_service_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy.engine import make_url

from chassis.settings import ServiceSettings
from tests.chassis.support import TcpProxy
from tests.helpers import error_reason, eventually, new_donor

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def _status(health, service: str) -> int:
    return (await health.Check(health_pb2.HealthCheckRequest(service=service))).status


async def _is(health, service: str, status: int) -> bool:
    return await _status(health, service) == status


@pytest.fixture
async def crm_via_proxy(env, identity_host):
    from services.crm.__main__ import build
    from services.crm.settings import CrmSettings

    admin = make_url(ServiceSettings().database_url)
    proxy = await TcpProxy(admin.host or "127.0.0.1", admin.port or 5432).start()
    url = admin.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    host = await build(CrmSettings(port=0, grace_seconds=1, database_url=url, db_pool_size=2,
                                   identity_address=f"127.0.0.1:{identity_host.bound_port}"))
    await host.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{host.bound_port}")
    yield proxy, donor_service_pb2_grpc.DonorServiceStub(channel), health_pb2_grpc.HealthStub(channel)
    await channel.close()
    proxy.restore()
    await host.stop()
    await proxy.close()


@pytest.mark.server_errors("outbox relay", "consumer", "revocation")
async def test_a_database_outage_is_unavailable_then_recovers(crm_via_proxy, stubs):
    proxy, donors, health = crm_via_proxy
    tenant = await stubs.sign_up()
    created = await donors.CreateDonor(new_donor(), metadata=tenant.md)

    proxy.cut()
    for call in (donors.GetDonor(pb.GetDonorRequest(id=created.donor.id), metadata=tenant.md),
                 donors.CreateDonor(new_donor(first_name="Blocked"), metadata=tenant.md)):
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await call
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE, e.value.details()
        assert error_reason(e.value) == "BACKEND_UNAVAILABLE"
        assert "retry" in e.value.details()

    # Readiness follows the database; liveness does not (an outage must not restart every pod).
    await eventually(lambda: _is(health, "", NOT_SERVING), what="readiness to drop")
    assert await _status(health, "givance.crm.v1.DonorService") == NOT_SERVING
    assert await _status(health, "liveness") == SERVING

    proxy.restore()
    await eventually(lambda: _is(health, "", SERVING), what="readiness to come back")

    async def answers() -> bool:
        try:
            got = await donors.GetDonor(pb.GetDonorRequest(id=created.donor.id), metadata=tenant.md)
        except grpc.aio.AioRpcError as err:
            assert err.code() == grpc.StatusCode.UNAVAILABLE, err.details()
            return False
        return got.donor.id == created.donor.id

    await eventually(answers, what="crm to answer again after the outage")
    listed = await donors.ListDonors(pb.ListDonorsRequest(), metadata=tenant.md)
    assert [d.first_name for d in listed.donors] == ["Ada"], "the refused create wrote something"
