"""Test setup: a fresh database and RabbitMQ vhost per run, real identity and crm servers.

Everything talks to the real PostgreSQL and RabbitMQ (the local servers, started here if
they are down). The database `givance_test` is recreated and migrated once per session;
the vhost `givance-test` is recreated so no queue of an earlier run or of `make run`
interferes. Both services run in-process on ephemeral ports.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from dataclasses import dataclass

import asyncpg
import grpc
import pytest
from givance.crm.v1 import donation_service_pb2_grpc, donor_service_pb2_grpc
from givance.identity.v1 import identity_service_pb2 as id_pb
from givance.identity.v1 import identity_service_pb2_grpc, organization_service_pb2_grpc

from chassis import devservices, migrate
from chassis.settings import ServiceSettings, plain_dsn

TEST_DB = os.environ.get("GIVANCE_TEST_DATABASE", "givance_test")
TEST_VHOST = TEST_DB.replace("_", "-")
PASSWORD = "correct horse battery staple"


def _admin_url() -> str:
    base = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    from sqlalchemy.engine import make_url

    return make_url(base).set(database=TEST_DB).render_as_string(hide_password=False)


def _rabbit_url() -> str:
    if os.environ.get("RABBITMQ_URL"):
        return os.environ["RABBITMQ_URL"]
    for args in (["delete_vhost", TEST_VHOST], ["add_vhost", TEST_VHOST],
                 ["set_permissions", "-p", TEST_VHOST, "guest", ".*", ".*", ".*"]):
        subprocess.run(["rabbitmqctl", "-q", *args], check=False, capture_output=True)
    return f"amqp://guest:guest@127.0.0.1:5672/{TEST_VHOST}"


async def _recreate_database(admin_url: str) -> None:
    from sqlalchemy.engine import make_url

    url = make_url(admin_url)
    conn = await asyncpg.connect(plain_dsn(url.set(database="postgres").render_as_string(hide_password=False)))
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            TEST_DB)
        await conn.execute(f'DROP DATABASE IF EXISTS "{TEST_DB}"')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def env() -> dict[str, str]:
    assert devservices.main() == 0, "PostgreSQL and RabbitMQ must be reachable"
    admin = _admin_url()
    os.environ["DATABASE_URL"] = admin
    os.environ["RABBITMQ_URL"] = _rabbit_url()
    os.environ["EVENTS_EXCHANGE"] = "givance.events"
    asyncio.run(_recreate_database(admin))
    asyncio.run(migrate.bootstrap(ServiceSettings().admin_database_url(), ["identity", "crm"]))
    for svc in ("identity", "crm"):
        migrate.upgrade(ServiceSettings().admin_database_url(), svc)
        migrate.declare_bus(os.environ["RABBITMQ_URL"], "givance.events", svc)
    return {"database_url": admin, "rabbitmq_url": os.environ["RABBITMQ_URL"]}


@pytest.fixture(scope="session")
async def admin_db(env):
    """A superuser connection, for inspecting what the services wrote (never used by them)."""
    conn = await asyncpg.connect(plain_dsn(env["database_url"]))
    yield conn
    await conn.close()


@pytest.fixture
async def crm_db(env):
    """crm's own Database (its service role, row-level security on), for store-level checks."""
    from chassis.db import Database, create_engine

    db = Database(create_engine(ServiceSettings().app_database_url("crm"), pool_size=2), "crm")
    yield db
    await db.dispose()


@pytest.fixture(scope="session")
async def identity_host(env):
    from services.identity.__main__ import build
    from services.identity.settings import IdentitySettings

    host = await build(IdentitySettings(port=0, grace_seconds=1))
    await host.start()
    yield host
    await host.stop()


@pytest.fixture(scope="session")
async def crm_host(env, identity_host):
    from services.crm.__main__ import build
    from services.crm.settings import CrmSettings

    host = await build(CrmSettings(port=0, grace_seconds=1, identity_address=f"127.0.0.1:{identity_host.bound_port}"))
    await host.start()
    yield host
    await host.stop()


@dataclass
class Tenant:
    org_id: str
    user_id: str
    email: str
    access_token: str
    refresh_token: str

    @property
    def md(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.access_token}"), ("x-tenant-id", self.org_id))


@dataclass
class Stubs:
    identity: identity_service_pb2_grpc.IdentityServiceStub
    organizations: organization_service_pb2_grpc.OrganizationServiceStub
    donors: donor_service_pb2_grpc.DonorServiceStub
    donations: donation_service_pb2_grpc.DonationServiceStub
    identity_channel: grpc.aio.Channel
    crm_channel: grpc.aio.Channel

    async def sign_up(self, name: str = "Hope Fund", email: str | None = None) -> Tenant:
        email = email or f"user-{uuid.uuid4().hex[:10]}@example.org"
        resp = await self.identity.SignUp(id_pb.SignUpRequest(
            email=email, password=PASSWORD, first_name="Test", last_name="User", organization_name=name))
        return Tenant(org_id=resp.organization.id, user_id=resp.user.id, email=email,
                      access_token=resp.tokens.access_token, refresh_token=resp.tokens.refresh_token)


@pytest.fixture(scope="session")
async def stubs(identity_host, crm_host) -> Stubs:
    ic = grpc.aio.insecure_channel(f"127.0.0.1:{identity_host.bound_port}")
    cc = grpc.aio.insecure_channel(f"127.0.0.1:{crm_host.bound_port}")
    yield Stubs(
        identity=identity_service_pb2_grpc.IdentityServiceStub(ic),
        organizations=organization_service_pb2_grpc.OrganizationServiceStub(ic),
        donors=donor_service_pb2_grpc.DonorServiceStub(cc),
        donations=donation_service_pb2_grpc.DonationServiceStub(cc),
        identity_channel=ic, crm_channel=cc,
    )
    await ic.close()
    await cc.close()


@pytest.fixture
async def tenant(stubs) -> Tenant:
    return await stubs.sign_up()


@pytest.fixture
async def other_tenant(stubs) -> Tenant:
    return await stubs.sign_up("Other Org")
