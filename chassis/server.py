"""Server bootstrap: a gRPC server with health, reflection and the interceptors, plus the
service's background workers (outbox relay, consumers), with graceful shutdown on SIGTERM
that lets in-flight calls finish.

Health (grpc.health.v1) tells two things apart:
- readiness, the overall service "" and each registered service: SERVING only while every
  readiness check passes (the database answers, the broker is connected, ...), re-evaluated
  every `readiness_interval`; a load balancer or Kubernetes sends traffic elsewhere meanwhile;
- liveness, the service "liveness": SERVING while the process runs its event loop. An outage
  of the database must not get every pod restarted, so no dependency is part of it.
On SIGTERM both turn NOT_SERVING first; after `drain_seconds` (the time endpoints take to
notice) the server refuses new calls and lets in-flight ones finish within `grace_seconds`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from chassis import health, logs, metrics, telemetry
from chassis.auth import TokenVerifier
from chassis.proxies import parse_networks
from chassis.rpc import ServerInterceptor

log = logging.getLogger(__name__)

LIVENESS = "liveness"  # the health service name of liveness; "" and each service mean readiness


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
    # Each returns True when a dependency the service needs to answer calls is there.
    readiness: list[Callable[[], Awaitable[bool]]] = field(default_factory=list)
    readiness_interval: float = 1.0
    drain_seconds: float = 0.0
    # The largest request message any method takes; a bigger one is RESOURCE_EXHAUSTED before a
    # handler sees it. Set deliberately, not left to grpc's default: 4 MiB covers every unary
    # request with room (the largest, 1000 ids, is ~40 KB) and every streamed import message
    # (the CLI sends 64 KiB CSV chunks; Donor rows are ~30 KB at their field limits, so a
    # message of 100 rows fits). No method class needs more, so none gets more.
    max_receive_bytes: int = 4 * 1024 * 1024
    metrics: Any = None  # the /metrics endpoint (chassis.metrics.MetricsEndpoint), when on
    trusted_proxies: str = ""  # whose x-forwarded-for names the client (chassis.proxies)

    def __post_init__(self) -> None:
        names = [r.full_name for r in self.registrations]
        self.interceptor = ServerInterceptor(self.verifier, names, self.name, parse_networks(self.trusted_proxies))
        self.server = grpc.aio.server(
            interceptors=[metrics.ServerMetrics(self.name), *telemetry.server_interceptors(), self.interceptor,
                          metrics.CallContext()],
            options=[("grpc.so_reuseport", 0), ("grpc.max_receive_message_length", self.max_receive_bytes)],
            # Admission control: beyond this many calls in flight a caller gets RESOURCE_EXHAUSTED
            # at once, rather than a queue that grows until calls time out.
            maximum_concurrent_rpcs=self.max_concurrent_rpcs,
        )
        for r in self.registrations:
            r.add(r.servicer, self.server)
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server)
        self._tasks: list[asyncio.Task] = []
        self.bound_port = 0
        self.ready = False
        self._was_ready = False

    async def start(self) -> int:
        self.bound_port = self.server.add_insecure_port(f"{self.host}:{self.port}")
        await self.server.start()
        for run in self.background:
            self._tasks.append(asyncio.create_task(run()))
        await self.health.set(LIVENESS, health_pb2.HealthCheckResponse.SERVING)
        self.ready = self._was_ready = await self._check_readiness()
        await self._set_readiness(self.ready)
        self._tasks.append(asyncio.create_task(self._watch_readiness()))
        log.info("%s serving on %s:%d%s", self.name, self.host, self.bound_port,
                 "" if self.ready else " (not ready yet)")
        return self.bound_port

    async def _check_readiness(self) -> bool:
        return await all_ready(self.name, self.readiness)

    async def _set_readiness(self, ready: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if ready else health_pb2.HealthCheckResponse.NOT_SERVING
        for r in self.registrations:
            await self.health.set(r.full_name, status)
        await self.health.set("", status)

    async def _watch_readiness(self) -> None:
        while True:
            # Until first ready (at start), look often: nothing waits longer than it must.
            await asyncio.sleep(self.readiness_interval if self.ready else min(0.1, self.readiness_interval))
            ready = await self._check_readiness()
            if ready != self.ready:
                if ready and not self._was_ready:
                    log.info("%s: ready", self.name)
                else:
                    log.warning("%s: %s", self.name,
                                "ready again" if ready else "not ready: a dependency is unavailable")
                self._was_ready = self._was_ready or ready
                self.ready = ready
                await self._set_readiness(ready)

    async def stop(self) -> None:
        await self.health.enter_graceful_shutdown()  # NOT_SERVING, readiness and liveness alike
        if self.drain_seconds > 0:  # endpoints stop sending before the server refuses
            await asyncio.sleep(self.drain_seconds)
        await self.server.stop(self.grace_seconds)  # refuses new calls, finishes in-flight ones
        for w in self.workers:
            await w.stop()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for fn in self.on_stop:
            await fn()

    async def serve_until_signalled(self) -> None:
        await serve_until_signalled(self)


async def all_ready(name: str, checks: list[Callable[[], Awaitable[bool]]]) -> bool:
    """Readiness: every check passes; one that fails or raises means not ready."""
    for check in checks:
        try:
            if not await check():
                return False
        except Exception as exc:  # noqa: BLE001 - a failing check means not ready, whatever it raised
            log.debug("%s: readiness check failed: %s", name, exc)
            return False
    return True


async def serve_until_signalled(host) -> None:
    """Start a host (gRPC or HTTP: start(), stop(), name, grace_seconds), serve until SIGTERM or
    SIGINT, then stop it gracefully."""
    await host.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("%s: shutting down (grace %.0fs)", host.name, host.grace_seconds)
    await host.stop()


def run(main: Callable[[], Awaitable[None]]) -> None:
    """Entrypoint helper for `python -m services.<name>`: logging (JSON lines), uvloop, run."""
    logs.configure()
    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
