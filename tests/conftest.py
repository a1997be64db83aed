"""Test setup: a fresh database and RabbitMQ vhost per run, every listed service's real server.

Everything talks to the real PostgreSQL and RabbitMQ (the local servers, started here if
they are down, or containers when only Docker is there: tests/infra.py). The database
`givance_test` is recreated and migrated once per session; the vhost `givance-test` is
recreated so no queue of an earlier run or of `make run` interferes. Every service listed in
pyproject.toml is migrated and runs in-process on an ephemeral port (chassis.spec builds each
from its SPEC).
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import asyncpg
import grpc
import pytest
from givance.billing.v1 import (
    gateway_config_service_pb2_grpc,
    invoice_service_pb2_grpc,
    plan_service_pb2_grpc,
    subscription_service_pb2_grpc,
    usage_service_pb2_grpc,
)
from givance.comms.v1 import (
    communication_service_pb2_grpc,
    message_service_pb2_grpc,
    settings_service_pb2_grpc,
    suppression_service_pb2_grpc,
    template_service_pb2_grpc,
)
from givance.crm.v1 import (
    client_service_pb2_grpc,
    document_service_pb2_grpc,
    donation_service_pb2_grpc,
    donor_list_service_pb2_grpc,
    donor_service_pb2_grpc,
    insight_service_pb2_grpc,
    journey_service_pb2_grpc,
    project_service_pb2_grpc,
    todo_service_pb2_grpc,
)
from givance.identity.v1 import (
    account_service_pb2_grpc,
    audit_service_pb2_grpc,
    identity_service_pb2_grpc,
    membership_service_pb2_grpc,
    mfa_service_pb2_grpc,
    operator_service_pb2_grpc,
    organization_service_pb2_grpc,
    revocation_service_pb2_grpc,
    session_service_pb2_grpc,
    staff_service_pb2_grpc,
)
from givance.identity.v1 import identity_service_pb2 as id_pb

from chassis import broker, migrate
from chassis.settings import ServiceSettings, plain_dsn
from chassis.spec import listed_services, load
from tests import infra
from tools import devprincipals, devservices

pytest_plugins = ["tests.server_errors"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The fault suite restarts the shared PostgreSQL and blocks RabbitMQ: it runs last."""
    items.sort(key=lambda item: "tests/faults/" in str(item.path).replace("\\", "/"))

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
    url = f"amqp://guest:guest@127.0.0.1:5672/{TEST_VHOST}"
    # Every service connects as its own broker user (givance-<service>, chassis.broker), as a
    # deployment does; permissions are per vhost, so runs on other vhosts share the users.
    for svc in listed_services():
        if os.environ.get(f"{svc.upper()}_BROKER_PASSWORD"):
            migrate.broker_user(url, "givance.events", svc)
    return url


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


# The suite hashes a password at every sign-up and login: cheap argon2id parameters here
# (unless the caller set others); identity's production parameters are tested once, in
# tests/identity/test_password_hashing.py.
TEST_ARGON2 = {"IDENTITY_ARGON2_TIME_COST": "1", "IDENTITY_ARGON2_MEMORY_KIB": "64", "IDENTITY_ARGON2_PARALLELISM": "1",
               # identity refuses the published development keys unless told this is development
               "IDENTITY_ALLOW_DEV_KEYS": "1"}


@pytest.fixture(scope="session")
def servers() -> Iterator[str]:
    """PostgreSQL and RabbitMQ for the session: given by URL, local (started when down), or
    containers when only Docker is there (tests/infra.py chooses). Yields the backend."""
    backend = infra.detect()
    if backend == "containers":
        with infra.containers() as (database_url, rabbitmq_url):
            os.environ["DATABASE_URL"], os.environ["RABBITMQ_URL"] = database_url, rabbitmq_url
            yield backend
        return
    assert devservices.main() == 0, "PostgreSQL and RabbitMQ must be reachable"
    yield backend


@pytest.fixture(scope="session")
def env(servers) -> dict[str, str]:
    for name, value in TEST_ARGON2.items():
        os.environ.setdefault(name, value)
    # crm's documents go to a directory of this run, not the working tree's .data
    if "CRM_OBJECT_STORE_DIR" not in os.environ:
        os.environ["CRM_OBJECT_STORE_DIR"] = tempfile.mkdtemp(prefix="givance-crm-documents-")
        atexit.register(shutil.rmtree, os.environ["CRM_OBJECT_STORE_DIR"], True)
    # ai's page fetcher may reach the tests' local HTTP servers (loopback only, never private or
    # link-local networks: services/ai/providers/fetcher.py).
    os.environ.setdefault("AI_FETCH_TEST_LOOPBACK_PORTS", "*")
    admin = _admin_url()
    os.environ["DATABASE_URL"] = admin
    if not os.environ.get("RABBITMQ_URL"):
        # the development users and passwords of `make run` (chassis.broker), so neither changes
        # the other's password
        os.environ.setdefault("GIVANCE_DEV_BROKER_USERS", "1")
        broker.dev_passwords(listed_services(), os.environ)
    vhost = ThreadPoolExecutor(1).submit(_rabbit_url)  # seconds of rabbitmqctl, overlapping the migrations
    os.environ["EVENTS_EXCHANGE"] = "givance.events"
    # billing's public webhook host: an ephemeral port, never the standard 8082
    os.environ["BILLING_WEBHOOK_PORT"] = "0"
    asyncio.run(_recreate_database(admin))
    asyncio.run(migrate.bootstrap(ServiceSettings().admin_database_url(), listed_services()))
    for svc in listed_services():
        migrate.upgrade(ServiceSettings().admin_database_url(), svc)
    # the development service principals of `make run` (crm's and ai's tenant tokens)
    os.environ.setdefault("GIVANCE_DEV_PRINCIPALS", "1")
    asyncio.run(devprincipals.bootstrap(ServiceSettings().admin_database_url(), listed_services(), os.environ))
    os.environ["RABBITMQ_URL"] = vhost.result()
    for svc in listed_services():
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


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


COMMS_HTTP_PORT = _free_port()  # the session's comms public HTTP (tests/docs substitutes 127.0.0.1:8081)


SENDGRID_TEST_PUBLIC_KEY = ("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEOL8Kom+EWvge7C8n9q9rEpqYVotVp2ISi/hAOr5McZuOlhzo4Vcp"
                            "J/uLSOJzq3io94977uwDojKiMk6MYU9vZQ==")


@pytest.fixture(scope="session")
async def mail_catcher(env, tmp_path_factory):
    """comms' development mail catcher (a real aiosmtpd SMTP server) on an ephemeral port, keeping
    mail in a folder of this session: comms sends to it (COMMS_SMTP_PORT, COMMS_MAIL_DIR)."""
    from services.comms.providers.catcher import MailCatcher

    folder = tmp_path_factory.mktemp("mail")
    catcher = MailCatcher(folder, "127.0.0.1", 0)
    await catcher.start()
    os.environ["COMMS_SMTP_HOST"], os.environ["COMMS_SMTP_PORT"] = "127.0.0.1", str(catcher.port)
    os.environ["COMMS_MAIL_DIR"] = str(folder)
    os.environ.setdefault("COMMS_SEND_BACKOFF_SECONDS", "0.05")  # a deferred mail's retries, quickly
    os.environ.setdefault("COMMS_MAILGUN_SIGNING_KEY", "key-test-mailgun-signing")
    os.environ.setdefault("COMMS_SENDGRID_VERIFICATION_KEY", SENDGRID_TEST_PUBLIC_KEY)  # tests/comms/test_sendgrid.py
    os.environ.setdefault("COMMS_WHATSAPP_APP_SECRET", "test-meta-app-secret")
    os.environ.setdefault("COMMS_WHATSAPP_VERIFY_TOKEN", "test-verify-token")
    os.environ.setdefault("COMMS_INBOUND_SMTP_PORT", "0")  # comms' inbound SMTP (unsubscribe mail), ephemeral
    yield catcher
    await catcher.stop()


@pytest.fixture(scope="session")
async def whatsapp_cloud(env):
    """A local WhatsApp Cloud API (tests/whatsapp_cloud.py): comms sends WhatsApp replies to it."""
    from tests.whatsapp_cloud import ACCESS_TOKEN, PHONE_NUMBER_ID, CloudApi

    api = await CloudApi().start()
    os.environ["COMMS_WHATSAPP_PROVIDER"] = "cloud"
    os.environ["COMMS_WHATSAPP_API_URL"] = api.base_url
    os.environ["COMMS_WHATSAPP_PHONE_NUMBER_ID"] = PHONE_NUMBER_ID
    os.environ["COMMS_WHATSAPP_ACCESS_TOKEN"] = ACCESS_TOKEN
    yield api
    await api.stop()


@pytest.fixture(scope="session")
async def hosts(env, mail_catcher, whatsapp_cloud):
    """Every listed service's host by name, started in the list's order on ephemeral ports;
    identity (first in the list) signs the tokens the others verify."""
    started = {}
    try:
        for name in listed_services():
            spec = load(name)
            issuer = {"identity_address": f"127.0.0.1:{started['identity'].bound_port}"} if started else {}
            if "crm" in started:  # comms reads donors from crm
                os.environ["COMMS_CRM_ADDRESS"] = f"127.0.0.1:{started['crm'].bound_port}"
            if name == "comms":  # its public HTTP on a port known before it starts: the links in its mails
                issuer.update(http_port=COMMS_HTTP_PORT, public_url=f"http://127.0.0.1:{COMMS_HTTP_PORT}")
            host = await spec.build(spec.settings(port=0, grace_seconds=1, **issuer))
            await host.start()
            started[name] = host
            if name == "comms":  # as make run's catcher (in comms): mail to unsubscribe+<token>@ reaches comms
                inbound = next(w for w in host.workers if type(w).__name__ == "InboundSmtp")
                mail_catcher.handler.on_unsubscribe = inbound.handler.on_unsubscribe
            # Where the services started after it find it (<NAME>_ADDRESS: ai reads crm's).
            if name != "identity":
                os.environ[f"{name.upper()}_ADDRESS"] = f"127.0.0.1:{host.bound_port}"
        yield started
    finally:
        for host in reversed(started.values()):
            await host.stop()


@pytest.fixture(scope="session")
async def identity_host(hosts):
    return hosts["identity"]


@pytest.fixture(scope="session")
async def crm_host(hosts):
    return hosts["crm"]


@pytest.fixture(scope="session")
async def billing_host(hosts):
    return hosts["billing"]


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


class Stubs:
    """A stub for every gRPC service of the suite, built once per session on one channel per
    service host. Tests use these (`stubs.audit`, `stubs.todos`, ...) rather than open channels."""

    def __init__(self, identity_channel: grpc.aio.Channel, crm_channel: grpc.aio.Channel,
                 comms_channel: grpc.aio.Channel | None = None,
                 billing_channel: grpc.aio.Channel | None = None) -> None:
        ic, cc = self.identity_channel, self.crm_channel = identity_channel, crm_channel
        self.identity = identity_service_pb2_grpc.IdentityServiceStub(ic)
        self.organizations = organization_service_pb2_grpc.OrganizationServiceStub(ic)
        self.accounts = account_service_pb2_grpc.AccountServiceStub(ic)
        self.mfa = mfa_service_pb2_grpc.MfaServiceStub(ic)
        self.members = membership_service_pb2_grpc.MembershipServiceStub(ic)
        self.sessions = session_service_pb2_grpc.SessionServiceStub(ic)
        self.audit = audit_service_pb2_grpc.AuditServiceStub(ic)
        self.staff = staff_service_pb2_grpc.StaffServiceStub(ic)
        self.revocations = revocation_service_pb2_grpc.RevocationServiceStub(ic)
        self.operator = operator_service_pb2_grpc.OperatorServiceStub(ic)
        self.donors = donor_service_pb2_grpc.DonorServiceStub(cc)
        self.donations = donation_service_pb2_grpc.DonationServiceStub(cc)
        self.donor_lists = donor_list_service_pb2_grpc.DonorListServiceStub(cc)
        self.insight = insight_service_pb2_grpc.InsightServiceStub(cc)
        self.journeys = journey_service_pb2_grpc.JourneyServiceStub(cc)
        self.projects = project_service_pb2_grpc.ProjectServiceStub(cc)
        self.todos = todo_service_pb2_grpc.TodoServiceStub(cc)
        self.clients = client_service_pb2_grpc.ClientServiceStub(cc)
        self.documents = document_service_pb2_grpc.DocumentServiceStub(cc)
        if comms_channel is not None:
            mc = self.comms_channel = comms_channel
            self.messages = message_service_pb2_grpc.MessageServiceStub(mc)
            self.templates = template_service_pb2_grpc.TemplateServiceStub(mc)
            self.communications = communication_service_pb2_grpc.CommunicationServiceStub(mc)
            self.suppressions = suppression_service_pb2_grpc.SuppressionServiceStub(mc)
            self.comms_settings = settings_service_pb2_grpc.SettingsServiceStub(mc)
        if billing_channel is not None:
            bc = self.billing_channel = billing_channel
            self.plans = plan_service_pb2_grpc.PlanServiceStub(bc)
            self.subscriptions = subscription_service_pb2_grpc.SubscriptionServiceStub(bc)
            self.invoices = invoice_service_pb2_grpc.InvoiceServiceStub(bc)
            self.usage = usage_service_pb2_grpc.UsageServiceStub(bc)
            self.gateway_configs = gateway_config_service_pb2_grpc.GatewayConfigServiceStub(bc)

    async def sign_up(self, name: str = "Hope Fund", email: str | None = None) -> Tenant:
        email = email or f"user-{uuid.uuid4().hex[:10]}@example.org"
        resp = await self.identity.SignUp(id_pb.SignUpRequest(
            email=email, password=PASSWORD, first_name="Test", last_name="User", organization_name=name))
        return Tenant(org_id=resp.organization.id, user_id=resp.user.id, email=email,
                      access_token=resp.tokens.access_token, refresh_token=resp.tokens.refresh_token)


@pytest.fixture(scope="session")
async def stubs(hosts, identity_host, crm_host) -> Stubs:
    ic = grpc.aio.insecure_channel(f"127.0.0.1:{identity_host.bound_port}")
    cc = grpc.aio.insecure_channel(f"127.0.0.1:{crm_host.bound_port}")
    more = {name: grpc.aio.insecure_channel(f"127.0.0.1:{hosts[name].bound_port}")
            for name in ("comms", "billing") if name in hosts}
    yield Stubs(identity_channel=ic, crm_channel=cc, comms_channel=more.get("comms"),
                billing_channel=more.get("billing"))
    await ic.close()
    await cc.close()
    for channel in more.values():
        await channel.close()


@pytest.fixture
async def tenant(stubs) -> Tenant:
    return await stubs.sign_up()


@pytest.fixture
async def other_tenant(stubs) -> Tenant:
    return await stubs.sign_up("Other Org")


@pytest.fixture(scope="session")
async def gateway_host(identity_host, crm_host, hosts):
    """The HTTP/JSON gateway in-process on an ephemeral port, in front of every service of the
    suite; its rate limits (in Redis, keys of this run only) set high enough not to interfere."""
    from gateway.__main__ import build
    from gateway.settings import GatewaySettings

    settings = GatewaySettings(
        port=0, grace_seconds=1,
        backends={name: f"127.0.0.1:{host.bound_port}" for name, host in hosts.items()},
        rate_limit_prefix=f"givance:test:{TEST_DB}:{uuid.uuid4().hex[:8]}",
        address_rate=10_000, address_burst=20_000, token_rate=10_000, token_burst=20_000,
        tenant_rate=10_000, tenant_burst=20_000, cors_origins=["https://app.example.org"],
        cors_cache_seconds=0.5, metrics_port=0)
    _, host = build(settings)
    await host.start()
    yield host
    await host.stop()
