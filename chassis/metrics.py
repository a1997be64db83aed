"""Metrics: OpenTelemetry instruments, exported for Prometheus on each service's /metrics.

- per gRPC method: `rpc.server.duration` (a histogram in ms, whose count is the number of calls),
  by rpc.service, rpc.method and rpc.grpc.status_code (errors are the calls whose code is not OK);
- per consumer: its queue's depth (`givance.consumer.queue_depth`, the lag) and its dead-letter
  queue's (`givance.consumer.dlq_depth`), beside the consumer's own counters (dead_lettered,
  outage_waits);
- the outbox backlog (`givance.outbox.backlog`, events written but not yet published) and the
  database pool (`givance.db.pool.in_use`, `givance.db.pool.size`).
Every point carries the attribute `service`. The queue depths and the backlog are sampled
every `interval` seconds by a worker beside the server (Sampler); the pool is read at scrape.

The interceptors also write one access-log line per call (logger chassis.access): DEBUG for a
call that succeeded, INFO for one that failed, with the method, the code and the duration;
chassis.logs adds the ids.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
import weakref
from collections.abc import Iterable

import grpc
import prometheus_client as prom
from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, Observation

from chassis import context

log = logging.getLogger(__name__)
access = logging.getLogger("chassis.access")

_meter = metrics.get_meter("givance.rpc")
# The per-call histogram is prometheus_client's, on the same /metrics registry the OpenTelemetry
# exporter serves: OpenTelemetry's histogram record cost ~19 us a call here (attribute handling
# on every record), prometheus_client's labelled child, cached per method and code, ~1 us.
DURATION = prom.Histogram("rpc_server_duration_milliseconds", "gRPC calls handled, by method",
                          ["service", "rpc_service", "rpc_method", "rpc_grpc_status_code"],
                          buckets=(0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000))
_installed = False
_samplers: weakref.WeakSet[Sampler] = weakref.WeakSet()
# What the innermost interceptor saw of a call (its request context and span), for the outer one.
_seen: contextvars.ContextVar[list | None] = contextvars.ContextVar("givance_call_seen", default=None)


def install(service_name: str) -> None:
    """Once per process: a MeterProvider whose reader is the Prometheus exporter."""
    global _installed
    if _installed:
        return
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource

    provider = MeterProvider(metric_readers=[PrometheusMetricReader()],
                             resource=Resource.create({"service.name": service_name}))
    metrics.set_meter_provider(provider)
    meter = metrics.get_meter("givance.metrics")
    meter.create_observable_gauge("givance.outbox.backlog", [_observe("backlog")],
                                  description="events in the outbox not yet published")
    meter.create_observable_gauge("givance.consumer.queue_depth", [_observe("queues")],
                                  description="messages waiting in a consumer's queue")
    meter.create_observable_gauge("givance.consumer.dlq_depth", [_observe("dlqs")],
                                  description="messages in a consumer's dead-letter queue")
    meter.create_observable_gauge("givance.db.pool.in_use", [_observe("pool_in_use")],
                                  description="database connections checked out")
    meter.create_observable_gauge("givance.db.pool.size", [_observe("pool_size")],
                                  description="the database pool's maximum size")
    _installed = True


def _observe(what: str):
    def callback(options: CallbackOptions) -> Iterable[Observation]:
        for sampler in list(_samplers):
            yield from sampler.observations(what)

    return callback


class MetricsEndpoint:
    """The /metrics HTTP endpoint (prometheus_client's server, in a thread), as a worker."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.bound_port = 0
        self.sampler: Sampler | None = None  # the service's, set beside it
        self._server = None

    async def run(self) -> None:
        from prometheus_client import start_http_server

        self._server, _ = start_http_server(self.port, addr=self.host)
        self.bound_port = self._server.server_port
        log.info("metrics on http://%s:%d/metrics", self.host, self.bound_port)

    async def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            await asyncio.to_thread(server.shutdown)
            server.server_close()


class Sampler:
    """Samples what a scrape cannot read without I/O: the outbox backlog and the queue depths."""

    def __init__(self, service: str, db, amqp_url: str, queues: Iterable[str], interval: float = 15.0):
        self.service, self.db, self.amqp_url, self.interval = service, db, amqp_url, interval
        self.queues = list(queues)
        self.backlog: int | None = None
        self.depths: dict[str, int] = {}
        self._conn = None
        _samplers.add(self)

    async def run(self) -> None:
        while True:
            try:
                await self.sample()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - an outage shows as stale gauges, not a crash
                log.debug("%s: metrics sample failed: %s", self.service, type(exc).__name__)
            await asyncio.sleep(self.interval)

    async def sample(self) -> None:
        pool = await self.db.engine.acquire_pool()
        self.backlog = await pool.fetchval(
            f"SELECT count(*) FROM {self.db.schema}.outbox WHERE published_at IS NULL")
        if not self.queues:
            return
        import aio_pika

        if self._conn is None or self._conn.is_closed:
            self._conn = await aio_pika.connect(self.amqp_url, timeout=5)
        for name in [*self.queues, *(f"{q}.dlq" for q in self.queues)]:
            channel = await self._conn.channel()
            try:
                declared = await channel.declare_queue(name, passive=True)
                self.depths[name] = declared.declaration_result.message_count
            except aio_pika.exceptions.ChannelClosed:
                self.depths.pop(name, None)  # not declared (yet)
            finally:
                if not channel.is_closed:
                    await channel.close()

    def observations(self, what: str) -> Iterable[Observation]:
        attrs = {"service": self.service}
        if what == "backlog" and self.backlog is not None:
            yield Observation(self.backlog, attrs)
        elif what in ("queues", "dlqs"):
            for name, depth in self.depths.items():
                if name.endswith(".dlq") == (what == "dlqs"):
                    yield Observation(depth, {**attrs, "queue": name.removesuffix(".dlq")})
        elif what == "pool_in_use":
            yield Observation(self.db.engine.checkedout(), attrs)
        elif what == "pool_size":
            yield Observation(self.db.engine.pool_size, attrs)

    async def stop(self) -> None:
        _samplers.discard(self)
        if self._conn is not None:
            await self._conn.close()
            self._conn = None


def _code(ctx, default: grpc.StatusCode) -> grpc.StatusCode:
    code = ctx.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if isinstance(code, int):
        return next((c for c in grpc.StatusCode if c.value[0] == code), default)
    return default


class _Handlers:
    """Rebuilds a method handler around a wrapper of its behaviour, whatever its shape."""

    def __init__(self) -> None:
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(self, continuation, details: grpc.HandlerCallDetails):
        cached = self._wrapped.get(details.method)
        if cached is not None:
            return cached
        handler = await continuation(details)
        if handler is None:
            return None
        for kind, factory in (("unary_unary", grpc.unary_unary_rpc_method_handler),
                              ("unary_stream", grpc.unary_stream_rpc_method_handler),
                              ("stream_unary", grpc.stream_unary_rpc_method_handler),
                              ("stream_stream", grpc.stream_stream_rpc_method_handler)):
            behavior = getattr(handler, kind)
            if behavior is not None:
                wrapped = factory(self.wrap(details.method, behavior, kind.endswith("stream")),
                                  request_deserializer=handler.request_deserializer,
                                  response_serializer=handler.response_serializer)
                self._wrapped[details.method] = wrapped
                return wrapped
        return handler

    def wrap(self, method: str, behavior, streams: bool):
        raise NotImplementedError


class ServerMetrics(_Handlers, grpc.aio.ServerInterceptor):
    """The outermost interceptor: times each call, counts it by method and code, logs it."""

    def __init__(self, service: str):
        super().__init__()
        self.service = service
        self._children: dict[tuple, prom.metrics.Histogram] = {}

    def wrap(self, method: str, behavior, streams: bool):
        rpc_service, _, rpc_method = method.strip("/").rpartition("/")
        record = self._record

        if streams and _is_async_gen(behavior):
            async def call_stream(request, ctx):
                # No reset: the generator may be finalised from another task (see chassis.rpc).
                seen, start, code = [], time.perf_counter(), grpc.StatusCode.OK
                _seen.set(seen)
                try:
                    async for item in behavior(request, ctx):
                        yield item
                except BaseException as exc:
                    code = _failure(ctx, exc)
                    raise
                finally:
                    record(rpc_service, rpc_method, _code(ctx, code), start, seen)

            return call_stream

        async def call(request, ctx):
            token, start, code = _seen.set([]), time.perf_counter(), grpc.StatusCode.OK
            seen = _seen.get()
            try:
                return await behavior(request, ctx)
            except BaseException as exc:
                code = _failure(ctx, exc)
                raise
            finally:
                _seen.reset(token)
                record(rpc_service, rpc_method, _code(ctx, code), start, seen)

        return call

    def _record(self, rpc_service: str, rpc_method: str, code: grpc.StatusCode, start: float, seen: list) -> None:
        ms = (time.perf_counter() - start) * 1000
        key = (rpc_service, rpc_method, code)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = DURATION.labels(self.service, rpc_service, rpc_method, code.name)
        child.observe(ms)
        level = logging.DEBUG if code is grpc.StatusCode.OK else logging.INFO
        if access.isEnabledFor(level):
            extra = {"rpc_method": f"{rpc_service}/{rpc_method}", "grpc_code": code.name,
                     "duration_ms": round(ms, 2), "service": self.service}
            if seen:
                request, span = seen[0]
                extra.update(_ids(request, span))
            access.log(level, "%s/%s %s %.1fms", rpc_service, rpc_method, code.name, ms, extra=extra)


class CallContext(_Handlers, grpc.aio.ServerInterceptor):
    """The innermost interceptor: hands the call's request context and span to ServerMetrics."""

    def wrap(self, method: str, behavior, streams: bool):
        if streams and _is_async_gen(behavior):
            async def call_stream(request, ctx):
                _note()
                async for item in behavior(request, ctx):
                    yield item

            return call_stream

        async def call(request, ctx):
            _note()
            return await behavior(request, ctx)

        return call


def _note() -> None:
    seen = _seen.get()
    if seen is not None and not seen:
        seen.append((context.current_or_none(), trace.get_current_span().get_span_context()))


def _ids(request: context.RequestContext | None, span) -> dict[str, str]:
    ids = {}
    if span is not None and span.is_valid:
        ids.update(trace_id=f"{span.trace_id:032x}", span_id=f"{span.span_id:016x}")
    if request is not None:
        ids["request_id"] = request.request_id
        if request.tenant_id is not None:
            ids["tenant_id"] = str(request.tenant_id)
    return ids


def _failure(ctx, exc: BaseException) -> grpc.StatusCode:
    if isinstance(exc, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    return _code(ctx, grpc.StatusCode.UNKNOWN)


def _is_async_gen(fn) -> bool:
    import inspect

    return inspect.isasyncgenfunction(fn)
