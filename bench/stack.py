"""The system under test: a fresh database and vhost, and the servers as subprocesses.

The database `givance_bench` is dropped and migrated anew and the vhost `givance-bench`
recreated on every run, so nothing of an earlier run (rows, queues, backlog) weighs on
the figures. Servers write their logs to build/bench/<name>.log; every one of them gets
SIGTERM when the run ends, however it ends.
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
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import asyncpg
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy.engine import make_url

from chassis import migrate
from chassis.settings import plain_dsn
from chassis.spec import listed_services

DATABASE = os.environ.get("GIVANCE_BENCH_DATABASE", "givance_bench")
VHOST = DATABASE.replace("_", "-")
EXCHANGE = "givance.events"
SERVICES = listed_services()
ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = ROOT / "build" / "bench"


@dataclass(frozen=True)
class Stack:
    database_url: str  # postgresql:// of the superuser on the bench database
    rabbitmq_url: str

    @property
    def admin_url(self) -> str:
        return make_url(self.database_url).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a service process (and of this one, for the chassis settings)."""
        return {"IDENTITY_ALLOW_DEV_KEYS": "1",  # a benchmark run is development: identity's keys may be too
                **os.environ, "DATABASE_URL": self.database_url, "RABBITMQ_URL": self.rabbitmq_url,
                "EVENTS_EXCHANGE": EXCHANGE, **extra}


def stack_from_env() -> Stack:
    base = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    database_url = make_url(base).set(drivername="postgresql", database=DATABASE).render_as_string(
        hide_password=False)
    return Stack(database_url=database_url, rabbitmq_url=f"amqp://guest:guest@127.0.0.1:5672/{VHOST}")


# -- state -----------------------------------------------------------------------------


def recreate(stack: Stack) -> None:
    """Drop and migrate the bench database; recreate the bench vhost with the services' queues."""
    asyncio.run(_drop_database(stack.database_url))
    asyncio.run(migrate.bootstrap(stack.admin_url, SERVICES))
    for args in (["delete_vhost", VHOST], ["add_vhost", VHOST],
                 ["set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*"]):
        subprocess.run(["rabbitmqctl", "-q", *args], check=False, capture_output=True)
    for svc in SERVICES:
        migrate.upgrade(stack.admin_url, svc)
        migrate.declare_bus(stack.rabbitmq_url, EXCHANGE, svc)


async def _drop_database(database_url: str) -> None:
    url = make_url(database_url)
    conn = await asyncpg.connect(plain_dsn(url.set(database="postgres").render_as_string(hide_password=False)))
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            url.database)
        await conn.execute(f'DROP DATABASE IF EXISTS "{url.database}"')
    finally:
        await conn.close()


async def unsent_events(stack: Stack, schema: str) -> int:
    conn = await asyncpg.connect(stack.database_url)
    try:
        return await conn.fetchval(f"SELECT count(*) FROM {schema}.outbox WHERE published_at IS NULL")
    finally:
        await conn.close()


async def wait_outbox_drained(stack: Stack, schema: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while (left := await unsent_events(stack, schema)) > 0:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{left} {schema} events still unsent after {timeout:.0f}s")
        await asyncio.sleep(0.2)


async def wait_queues_drained(stack: Stack, queues: list[str], timeout: float = 60.0) -> None:
    """Until none of `queues` holds a message ready for delivery (the consumers may still be
    handling their last prefetched ones)."""
    deadline = time.monotonic() + timeout
    conn = await aio_pika.connect(stack.rabbitmq_url, timeout=5)
    try:
        channel = await conn.channel()
        while True:
            ready = {}
            for name in queues:
                queue = await channel.declare_queue(name, passive=True)
                ready[name] = queue.declaration_result.message_count
            if not any(ready.values()):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"queues still hold messages after {timeout:.0f}s: {ready}")
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


# -- processes -------------------------------------------------------------------------


def free_ports(count: int) -> list[int]:
    """Ports nobody listens on; all held open at once so that no two are the same."""
    with contextlib.ExitStack() as held:
        socks = [held.enter_context(socket.socket()) for _ in range(count)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


class Processes:
    """Servers started as `python -m <module>`; stop_all() sends each SIGTERM, then waits."""

    def __init__(self) -> None:
        self._procs: dict[str, subprocess.Popen] = {}
        LOG_DIR.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, module: str, *args: str, env: dict[str, str] | None = None) -> None:
        with open(LOG_DIR / f"{name}.log", "wb") as log:
            self._procs[name] = subprocess.Popen([sys.executable, "-m", module, *args], cwd=ROOT, env=env,
                                                 stdout=log, stderr=subprocess.STDOUT)

    def check_alive(self) -> None:
        for name, proc in self._procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}; see {LOG_DIR / name}.log")

    def stop_all(self, timeout: float = 10.0) -> None:
        for proc in self._procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in self._procs.items():
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                print(f"bench: {name} ignored SIGTERM for {timeout:.0f}s; killing it", file=sys.stderr)
                proc.kill()
                proc.wait()
        self._procs.clear()


async def wait_healthy(address: str, procs: Processes, timeout: float = 30.0) -> None:
    """Poll the standard gRPC health check until the server says SERVING."""
    deadline = time.monotonic() + timeout
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            procs.check_alive()
            try:
                resp = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                if resp.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{address} not healthy after {timeout:.0f}s")
            await asyncio.sleep(0.2)


async def wait_listening(address: str, procs: Processes, timeout: float = 30.0) -> None:
    """For the echo server, which has no health service: wait until the channel connects."""
    deadline = time.monotonic() + timeout
    async with grpc.aio.insecure_channel(address) as channel:
        while True:
            procs.check_alive()
            try:
                await asyncio.wait_for(channel.channel_ready(), timeout=1)
                return
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise
