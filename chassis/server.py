"""Server bootstrap: a gRPC server with health, reflection and the interceptors, plus the
service's background workers (outbox relay, consumers), with graceful shutdown on SIGTERM
that lets in-flight calls finish."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from chassis import telemetry
from chassis.auth import TokenVerifier
from chassis.rpc import ServerInterceptor

log = logging.getLogger(__name__)


class Worker(Protocol):
    async def stop(self) -> None: ...


@dataclass
class Registration:
    full_name: str  # e.g. "givance.crm.v1.DonorService"
    add: Callable[[Any, grpc.aio.Server], None]
    servicer: Any


@dataclass
class ServiceHost:
    name: str
    host: str
    port: int
    verifier: TokenVerifier | None
    registrations: list[Registration]
    grace_seconds: float = 10.0
    max_concurrent_rpcs: int = 512
    # Coroutines started after the server (relay.run) and objects stopped at shutdown.
    background: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    workers: list[Worker] = field(default_factory=list)
    on_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        names = [r.full_name for r in self.registrations]
        self.server = grpc.aio.server(
            interceptors=[*telemetry.server_interceptors(), ServerInterceptor(self.verifier, names, self.name)],
            options=[("grpc.so_reuseport", 0)],
            # Admission control: beyond this many calls in flight a caller gets RESOURCE_EXHAUSTED
            # at once, rather than a queue that grows until calls time out.
            maximum_concurrent_rpcs=self.max_concurrent_rpcs,
        )
        for r in self.registrations:
            r.add(r.servicer, self.server)
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server)
        self._tasks: list[asyncio.Task] = []
        self.bound_port = 0

    async def start(self) -> int:
        self.bound_port = self.server.add_insecure_port(f"{self.host}:{self.port}")
        await self.server.start()
        for run in self.background:
            self._tasks.append(asyncio.create_task(run()))
        for r in self.registrations:
            await self.health.set(r.full_name, health_pb2.HealthCheckResponse.SERVING)
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        log.info("%s serving on %s:%d", self.name, self.host, self.bound_port)
        return self.bound_port

    async def stop(self) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(self.grace_seconds)  # refuses new calls, finishes in-flight ones
        for w in self.workers:
            await w.stop()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for fn in self.on_stop:
            await fn()

    async def serve_until_signalled(self) -> None:
        await self.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("%s: shutting down (grace %.0fs)", self.name, self.grace_seconds)
        await self.stop()


def attach_event_machinery(host: ServiceHost, db, *, dsn: str, amqp_url: str, exchange: str,
                           subscriptions, revocations) -> None:
    """What every service runs beside its gRPC server: the outbox relay of its schema, the
    membership-revocation listener feeding `revocations`, and one consumer per subscription."""
    from chassis.consumer import Consumer
    from chassis.outbox import OutboxRelay
    from chassis.revocation import RevocationListener

    relay = OutboxRelay(dsn, db.schema, amqp_url, exchange)
    listener = RevocationListener(amqp_url, exchange, revocations)
    host.background += [relay.run, listener.run]
    host.workers += [relay, listener]
    for sub in subscriptions:
        consumer = Consumer(db, amqp_url, exchange, sub.queue, sub.bindings, sub.handler,
                            max_attempts=sub.max_attempts, prefetch=sub.prefetch)
        host.background.append(consumer.run)
        host.workers.append(consumer)
    host.on_stop.append(db.dispose)


def run(main: Callable[[], Awaitable[None]]) -> None:
    """Entrypoint helper for `python -m services.<name>`: logging, uvloop, run."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
