"""The chassis' HTTP host: an ASGI app (Starlette) served by uvicorn, the way every gRPC server
runs on chassis.server's ServiceHost. The gateway runs on it; comms' and billing's public
endpoints will too.

    host = HttpHost("gateway", app, host="127.0.0.1", port=8080, readiness=[check])
    await host.serve_until_signalled()

It adds to the app:
- /healthz (liveness: 200 while the event loop turns; no dependency is part of it) and
  /readyz (readiness: 200 only while every readiness check passes, 503 otherwise and from
  the moment a shutdown starts);
- OpenTelemetry tracing of every request (the ASGI middleware), when chassis.telemetry is on;
- graceful shutdown: on SIGTERM /readyz turns 503, after `drain_seconds` the server stops
  accepting connections and in-flight requests get `grace_seconds` to finish;
- the Prometheus /metrics endpoint on its own port, when given one (chassis.metrics'
  MetricsEndpoint, as the gRPC services have): started with the host, stopped after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable

import uvicorn
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from chassis import proxies, telemetry
from chassis.server import all_ready, serve_until_signalled

log = logging.getLogger(__name__)

LIVENESS_PATH = "/healthz"
READINESS_PATH = "/readyz"


class _Health:
    """Answers the two probes before the app sees the request (no middleware, no limits)."""

    def __init__(self, app: ASGIApp, host: HttpHost) -> None:
        self.app, self.host = app, host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in (LIVENESS_PATH, READINESS_PATH):
            if scope["path"] == LIVENESS_PATH:
                response = PlainTextResponse("ok")
            else:
                ready = await self.host.check_readiness()
                response = PlainTextResponse("ready" if ready else "not ready", status_code=200 if ready else 503)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class HttpHost:
    def __init__(self, name: str, app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0,
                 readiness: list[Callable[[], Awaitable[bool]]] | None = None,
                 grace_seconds: float = 10.0, drain_seconds: float = 0.0,
                 on_stop: list[Callable[[], Awaitable[None]]] | None = None,
                 limit_concurrency: int | None = None, metrics=None) -> None:
        self.name = name
        self.metrics = metrics  # chassis.metrics.MetricsEndpoint, or None
        self.readiness = readiness or []
        self.grace_seconds, self.drain_seconds = grace_seconds, drain_seconds
        self.on_stop = on_stop or []
        self.stopping = False
        wrapped: ASGIApp = app
        if telemetry.enabled():
            from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

            wrapped = OpenTelemetryMiddleware(wrapped)
        self.app = _Health(wrapped, self)
        self.config = uvicorn.Config(
            self.app, host=host, port=port, log_config=None, access_log=False, lifespan="off",
            timeout_graceful_shutdown=grace_seconds, limit_concurrency=limit_concurrency,
            server_header=False, proxy_headers=False)
        self.server = uvicorn.Server(self.config)
        self.sock: socket.socket | None = None
        self._task: asyncio.Task | None = None
        self.bound_port = 0

    async def check_readiness(self) -> bool:
        return not self.stopping and await all_ready(self.name, self.readiness)

    async def start(self) -> int:
        """Bind (port 0: an ephemeral one) and serve in the background; returns the port."""
        if self.metrics is not None:
            await self.metrics.run()
        family = socket.AF_INET6 if ":" in self.config.host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((self.config.host, self.config.port))
        self.sock.set_inheritable(True)
        self.bound_port = self.sock.getsockname()[1]
        # Signals are the host's (serve_until_signalled), not uvicorn's: it must not take SIGINT
        # from a test process or re-raise SIGTERM after its own shutdown.
        self.server.capture_signals = contextlib.nullcontext
        self._task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        while not self.server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
            await asyncio.sleep(0.01)
        log.info("%s serving HTTP on %s:%d", self.name, self.config.host, self.bound_port)
        return self.bound_port

    async def stop(self) -> None:
        self.stopping = True  # /readyz says 503 from now on
        if self.drain_seconds > 0:
            await asyncio.sleep(self.drain_seconds)
        self.server.should_exit = True  # stops accepting; in-flight requests get grace_seconds
        if self._task is not None:
            await self._task
        for fn in self.on_stop:
            await fn()
        if self.metrics is not None:
            await self.metrics.stop()

    async def serve_until_signalled(self) -> None:
        await serve_until_signalled(self)


def client_address(request: Request, trusted: tuple[proxies.Network, ...] = ()) -> str:
    """The caller's address: the TCP peer, or, when the peer is one of the `trusted` proxies (the
    ingress controller), the rightmost untrusted address of its x-forwarded-for (chassis.proxies)."""
    peer = request.client.host if request.client else ""
    if not trusted:
        return peer
    return proxies.client_address(peer, request.headers.getlist("x-forwarded-for"), trusted)
