"""Revocations survive restarts and reconnects (issue 9, item 3): a crm process started after a
revocation refuses the revoked token, is not ready until it has listed the revocations from
identity, and catches up, after a broker cut, on a broadcast it missed."""

from __future__ import annotations

import contextlib

import grpc
import pytest
from givance.crm.v1 import donor_service_pb2 as dpb
from givance.crm.v1 import donor_service_pb2_grpc
from givance.identity.v1 import identity_service_pb2 as pb
from givance.identity.v1 import session_service_pb2 as spb
from grpc_health.v1 import health_pb2, health_pb2_grpc

from chassis.settings import ServiceSettings
from tests.chassis.support import TcpProxy
from tests.conftest import PASSWORD
from tests.helpers import error_reason, eventually

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _md(token: str, org_id: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"), ("x-tenant-id", org_id))


@contextlib.asynccontextmanager
async def _crm(identity_address: str, **settings):
    """A crm process of its own (as after a restart), with a channel to it."""
    from services.crm.__main__ import build
    from services.crm.settings import CrmSettings

    host = await build(CrmSettings(port=0, grace_seconds=1, db_pool_size=2, identity_address=identity_address,
                                   **settings))
    await host.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{host.bound_port}")
    try:
        yield donor_service_pb2_grpc.DonorServiceStub(channel), health_pb2_grpc.HealthStub(channel)
    finally:
        await channel.close()
        await host.stop()


async def _status(health) -> int:
    return (await health.Check(health_pb2.HealthCheckRequest())).status


async def _serving(health) -> bool:
    return await _status(health) == SERVING


async def _refused(donors, md, reason: str) -> bool:
    try:
        await donors.ListDonors(dpb.ListDonorsRequest(), metadata=md)
        return False
    except grpc.aio.AioRpcError as err:
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED and error_reason(err) == reason, err
        return True


async def _session(stubs, tenant):
    resp = await stubs.identity.Login(pb.LoginRequest(email=tenant.email, password=PASSWORD,
                                                      organization_id=tenant.org_id))
    return resp.tokens


async def test_a_crm_started_after_the_revocations_refuses_the_revoked_tokens(stubs, identity_host, tenant):
    ended = await _session(stubs, tenant)
    await stubs.identity.Logout(pb.LogoutRequest(), metadata=_md(ended.access_token, tenant.org_id))
    # a deleted service account's token: a membership revocation
    created = await stubs.sessions.CreateServiceAccount(
        spb.CreateServiceAccountRequest(name="gone", permissions=["crm.donors.read"]), metadata=tenant.md)
    issued = await stubs.identity.IssueServiceToken(pb.IssueServiceTokenRequest(
        client_id=created.service_account.client_id, client_secret=created.client_secret))
    await stubs.sessions.DeleteServiceAccount(spb.DeleteServiceAccountRequest(id=created.service_account.id),
                                              metadata=tenant.md)

    async with _crm(f"127.0.0.1:{identity_host.bound_port}") as (donors, health):
        await eventually(lambda: _serving(health), what="the new crm to be ready")
        assert await _refused(donors, _md(ended.access_token, tenant.org_id), "SESSION_REVOKED")
        assert await _refused(donors, _md(issued.access_token, tenant.org_id), "TOKEN_REVOKED")
        await donors.ListDonors(dpb.ListDonorsRequest(), metadata=tenant.md)


@pytest.mark.server_errors("revocation")
async def test_crm_is_not_ready_until_it_has_listed_the_revocations(stubs, identity_host, tenant):
    proxy = await TcpProxy("127.0.0.1", identity_host.bound_port).start()
    proxy.cut()  # identity unreachable: the revocations cannot be listed
    try:
        async with _crm(f"127.0.0.1:{proxy.port}") as (_donors, health):
            # it tried (and so is connected to the database and the broker), and is still not ready
            await eventually(lambda: proxy.refused >= 2, what="crm to try listing the revocations")
            assert await _status(health) == NOT_SERVING
            proxy.restore()
            await eventually(lambda: _serving(health), what="crm to be ready once identity answers")
    finally:
        await proxy.close()


@pytest.mark.server_errors("aio_pika", "outbox relay", "consumer", "revocation")
async def test_a_broadcast_missed_during_a_broker_cut_is_caught_up(stubs, identity_host, tenant, admin_db):
    rabbit = ServiceSettings().rabbitmq_url
    proxy = await TcpProxy.to(rabbit).start()
    try:
        async with _crm(f"127.0.0.1:{identity_host.bound_port}", rabbitmq_url=proxy.url(rabbit)) as (donors, health):
            await eventually(lambda: _serving(health), what="crm to be ready")
            stolen = await _session(stubs, tenant)
            md = _md(stolen.access_token, tenant.org_id)
            await donors.ListDonors(dpb.ListDonorsRequest(), metadata=md)

            proxy.cut()
            await stubs.identity.Logout(pb.LogoutRequest(), metadata=md)

            async def broadcast() -> bool:  # identity has published it: crm, cut off, missed it
                return bool(await admin_db.fetchval(
                    "SELECT count(*) FROM identity.outbox WHERE routing_key = 'identity.session.revoked' "
                    "AND tenant_id = $1::uuid AND published_at IS NOT NULL", tenant.org_id))

            await eventually(broadcast, what="identity to broadcast the revocation")
            proxy.restore()
            await eventually(lambda: _refused(donors, md, "SESSION_REVOKED"),
                             what="crm to catch up on the missed revocation after reconnecting")
    finally:
        await proxy.close()
