"""The system under fault: identity and crm as real processes on their own database and vhost,
a write stream against them, and the invariant that every committed event was delivered and
handled exactly once.

The suite's database and vhost are its own (`<test database>_faults`), so the in-process
servers of the rest of the test session never consume its queues.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aio_pika
import asyncpg
import grpc
from givance.crm.v1 import donation_service_pb2_grpc, donor_service_pb2_grpc
from givance.identity.v1 import identity_service_pb2 as id_pb
from givance.identity.v1 import identity_service_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from yarl import URL

from chassis import migrate
from chassis.settings import plain_dsn
from tests.chassis.support import TcpProxy
from tests.helpers import eventually, gift, new_donor, usd

ROOT = Path(__file__).resolve().parents[2]
LOG_DIR = ROOT / "build" / "faults"
EXCHANGE = "givance.events"
SERVICES = ("identity", "crm")
PASSWORD = "correct horse battery staple"
# Quick in `make test`, full length in `make faults`.
FULL = os.environ.get("GIVANCE_FAULTS_PROFILE") == "full"
WRITES = 4000 if FULL else 600
OUTAGE_SECONDS = 20.0 if FULL else 4.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def topic_matches(pattern: str, key: str) -> bool:
    """AMQP topic matching: `*` is one word, `#` zero or more."""
    p, k = pattern.split("."), key.split(".")

    def match(i: int, j: int) -> bool:
        if i == len(p):
            return j == len(k)
        if p[i] == "#":
            return any(match(i + 1, jj) for jj in range(j, len(k) + 1))
        return j < len(k) and p[i] in ("*", k[j]) and match(i + 1, j + 1)

    return match(0, 0)


@dataclass
class Stack:
    database_url: str  # postgresql:// superuser URL of the suite's database
    rabbitmq_url: str  # of the suite's vhost, direct
    broker: TcpProxy  # the services reach RabbitMQ only through this
    ports: dict[str, int] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def address(self, name: str) -> str:
        return f"127.0.0.1:{self.ports[name]}"

    def start(self, name: str, *, failpoints: str = "") -> None:
        env = {**os.environ, "DATABASE_URL": self.database_url, "RABBITMQ_URL": self.broker.url(self.rabbitmq_url),
               "EVENTS_EXCHANGE": EXCHANGE, f"{name.upper()}_PORT": str(self.ports[name]),
               "IDENTITY_ADDRESS": self.address("identity"), f"{name.upper()}_GRACE_SECONDS": "10",
               # As Kubernetes' preStop does: NOT_SERVING for a moment before calls are refused.
               f"{name.upper()}_DRAIN_SECONDS": "1",
               "IDENTITY_ARGON2_TIME_COST": "1", "IDENTITY_ARGON2_MEMORY_KIB": "8192",
               "GIVANCE_FAILPOINTS": failpoints, "PYTHONUNBUFFERED": "1"}
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        with open(LOG_DIR / f"{name}.log", "ab") as log:
            self.procs[name] = subprocess.Popen([sys.executable, "-m", f"services.{name}"], cwd=ROOT, env=env,
                                                stdout=log, stderr=subprocess.STDOUT)

    def alive(self, name: str) -> bool:
        return self.procs[name].poll() is None

    async def healthy(self, name: str, timeout: float = 60) -> None:
        async def serving() -> bool:
            assert self.alive(name), f"{name} exited with {self.procs[name].returncode}; see {LOG_DIR}/{name}.log"
            async with grpc.aio.insecure_channel(self.address(name)) as ch:
                try:
                    resp = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=1)
                except grpc.aio.AioRpcError:
                    return False
                return resp.status == health_pb2.HealthCheckResponse.SERVING
        await eventually(serving, timeout=timeout, what=f"{name} to serve")

    async def restart(self, name: str, *, failpoints: str = "") -> None:
        """Stop and start `name`; with failpoints armed it may die at once, so only then not waited for."""
        await self.stop(name)
        self.start(name, failpoints=failpoints)
        if not failpoints:
            await self.healthy(name)

    async def stop(self, name: str, sig: int = signal.SIGTERM) -> int:
        proc = self.procs[name]
        if proc.poll() is None:
            proc.send_signal(sig)
        return await asyncio.to_thread(proc.wait, 60)

    async def stop_all(self) -> None:
        for name in list(self.procs):
            await self.stop(name)


async def create_stack(admin_database_url: str, rabbitmq_base: str, name: str) -> Stack:
    """A fresh database and vhost named `name`, migrated, with the services' queues declared."""
    from sqlalchemy.engine import make_url

    url = make_url(admin_database_url).set(drivername="postgresql", database=name)
    conn = await asyncpg.connect(plain_dsn(url.set(database="postgres").render_as_string(hide_password=False)))
    try:
        await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await conn.close()
    admin = url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    await migrate.bootstrap(admin, list(SERVICES))
    vhost = name.replace("_", "-")
    for args in (["delete_vhost", vhost], ["add_vhost", vhost],
                 ["set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"]):
        await asyncio.to_thread(subprocess.run, ["rabbitmqctl", "-q", *args], check=False, capture_output=True)
    rabbit = str(URL(rabbitmq_base).with_path("/" + vhost))
    for svc in SERVICES:
        await asyncio.to_thread(migrate.upgrade, admin, svc)
        await asyncio.to_thread(migrate.declare_bus, rabbit, EXCHANGE, svc)
        await asyncio.to_thread(migrate.broker_user, rabbit, EXCHANGE, svc)  # its own user, in this vhost too
    proxy = await TcpProxy().start()
    stack = Stack(database_url=url.render_as_string(hide_password=False), rabbitmq_url=rabbit, broker=proxy,
                  ports={svc: free_port() for svc in SERVICES})
    return stack


# -- the write stream ------------------------------------------------------------------------


@dataclass
class Writes:
    ok: int = 0
    failed: Counter = field(default_factory=Counter)
    # (when the call started, its outcome): to tell calls begun before a fault from those after
    calls: list[tuple[float, str]] = field(default_factory=list)


class Workload:
    """Donations recorded for one organization by `concurrency` writers; each publishes
    crm.donation.recorded and an audit entry that identity's consumer turns into its trail."""

    def __init__(self, stack: Stack):
        self.stack = stack
        self.writes = Writes()
        self.started_calls = 0

    async def setup(self) -> None:
        async with grpc.aio.insecure_channel(self.stack.address("identity")) as ch:
            resp = await identity_service_pb2_grpc.IdentityServiceStub(ch).SignUp(id_pb.SignUpRequest(
                email=f"faults-{uuid.uuid4().hex[:8]}@example.org", password=PASSWORD, organization_name="Faults",
                first_name="F", last_name="T"))
        self.md = (("authorization", f"Bearer {resp.tokens.access_token}"), ("x-tenant-id", resp.organization.id))
        async with grpc.aio.insecure_channel(self.stack.address("crm")) as ch:
            donors = donor_service_pb2_grpc.DonorServiceStub(ch)
            self.donors = [(await donors.CreateDonor(new_donor(first_name=f"D{i}"), metadata=self.md)).donor.id
                           for i in range(8)]

    async def run(self, count: int, concurrency: int = 8) -> Writes:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(count):
            queue.put_nowait(i)
        async with grpc.aio.insecure_channel(self.stack.address("crm")) as ch:
            donations = donation_service_pb2_grpc.DonationServiceStub(ch)

            async def writer() -> None:
                while not queue.empty():
                    i = queue.get_nowait()
                    self.started_calls += 1
                    started = time.monotonic()
                    try:
                        await donations.RecordDonation(gift(self.donors[i % len(self.donors)], usd(1 + i % 50)),
                                                       metadata=self.md, timeout=15)
                        self.writes.ok += 1
                        self.writes.calls.append((started, "OK"))
                    except grpc.aio.AioRpcError as err:
                        self.writes.failed[err.code().name] += 1
                        self.writes.calls.append((started, err.code().name))
                        await asyncio.sleep(0.05)  # the service is down or refusing: do not spin

            await asyncio.gather(*(writer() for _ in range(concurrency)))
        return self.writes


# -- the invariant ---------------------------------------------------------------------------


@dataclass
class Report:
    fault: str
    written: int  # events committed during the fault's stream (outbox rows)
    delivered: int  # of those, handled by every consumer subscribed to them
    duplicates: int  # repeated deliveries or publications, each dropped by an inbox
    lost: int

    def line(self) -> str:
        return (f"fault {self.fault}: written={self.written} delivered={self.delivered} "
                f"duplicates_suppressed={self.duplicates} lost={self.lost}")


AUDIT = ".audit.recorded"
SUPPRESSED = "duplicate suppressed"


async def outbox_marks(database_url: str) -> dict[str, int]:
    """The last outbox id of each schema: a fault's events are the rows after it."""
    db = await asyncpg.connect(database_url)
    try:
        return {s: await db.fetchval(f"SELECT coalesce(max(id), 0) FROM {s}.outbox") for s in SERVICES}
    finally:
        await db.close()


def suppressed_in_logs() -> int:
    return sum((LOG_DIR / f"{s}.log").read_text(errors="replace").count(SUPPRESSED)
               for s in SERVICES if (LOG_DIR / f"{s}.log").exists())


async def check_invariant(stack: Stack, fault: str, since: dict[str, int], suppressed_before: int,
                          timeout: float = 120) -> Report:
    """Every event committed since `since` was published and handled exactly once by every
    consumer subscribed to it (its inbox row; for audit entries, their one row in the trail),
    and no DLQ holds anything."""
    from services.crm.consumers import SUBSCRIPTIONS as CRM
    from services.identity.consumers import SUBSCRIPTIONS as IDENTITY

    subscriptions = {"crm": CRM, "identity": IDENTITY}
    db = await asyncpg.connect(stack.database_url)
    try:
        async def outbox_drained() -> bool:
            return all([await db.fetchval(f"SELECT count(*) = 0 FROM {s}.outbox WHERE published_at IS NULL")
                        for s in SERVICES])

        await eventually(outbox_drained, timeout=timeout, what="every outbox to drain")
        rows = [r for s in SERVICES for r in await db.fetch(
            f"SELECT event_id::text AS id, routing_key FROM {s}.outbox WHERE id > $1", since[s])]
        audit_ids = [r["id"] for r in rows if r["routing_key"].endswith(AUDIT)]
        domain = [r for r in rows if not r["routing_key"].endswith(AUDIT)]

        async def missing() -> set[str]:
            gaps: set[str] = set()
            for owner, subs in subscriptions.items():
                for sub in subs:
                    wanted = [r["id"] for r in domain if any(topic_matches(b, r["routing_key"]) for b in sub.bindings)]
                    got = await db.fetch(f"SELECT event_id::text AS id FROM {owner}.inbox WHERE consumer = $1 "
                                         "AND event_id = ANY($2::uuid[])", sub.queue, wanted)
                    gaps |= set(wanted) - {r["id"] for r in got}
            trail = await db.fetch("SELECT event_id::text AS id, count(*) AS n FROM identity.activity_logs "
                                   "WHERE event_id = ANY($1::uuid[]) GROUP BY event_id", audit_ids)
            counts = {r["id"]: r["n"] for r in trail}
            return gaps | {i for i in audit_ids if counts.get(i) != 1}

        async def all_handled() -> bool:
            return not await missing()

        with contextlib.suppress(AssertionError):
            await eventually(all_handled, timeout=timeout, what="every committed event to be handled")
        lost = await missing()
    finally:
        await db.close()
    conn = await aio_pika.connect(stack.rabbitmq_url, timeout=10)
    try:
        channel = await conn.channel()
        dead = {}
        for subs in subscriptions.values():
            for sub in subs:
                dlq = await channel.declare_queue(f"{sub.queue}.dlq", passive=True)
                dead[sub.queue] = dlq.declaration_result.message_count
    finally:
        await conn.close()
    report = Report(fault=fault, written=len(rows), delivered=len(rows) - len(lost),
                    duplicates=suppressed_in_logs() - suppressed_before, lost=len(lost))
    print(report.line())
    assert not lost, f"{len(lost)} committed events not handled exactly once, e.g. {sorted(lost)[:5]}"
    assert not any(dead.values()), f"dead letters: {dead}"
    return report
