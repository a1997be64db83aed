"""OpenTelemetry tracing: gRPC (server and client), SQL (asyncpg) and the bus.

Nothing is exported unless an exporter is configured (OTEL_EXPORTER_OTLP_ENDPOINT, or an
exporter a test passes in); without one the API stays a no-op and costs next to nothing.
The bus carries trace context in message headers: the outbox stores the context of the
request that wrote the event, and the consumer continues that trace.

Traces start where work starts: a request, a consumed event, or a span a background task opens
by name. A SQL statement with no parent (a relay's poll, an audit flush, a scheduler's claim) is
not sampled, so background loops leave no one-span traces of bare BEGIN/SELECT/COMMIT.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision, ParentBased, Sampler, SamplingResult

_enabled = False
_provider: TracerProvider | None = None


class NoOrphanSql(Sampler):
    """Root sampler: drops a span that would start a trace with a bare database statement."""

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None,
                      trace_state=None) -> SamplingResult:
        if attributes and ("db.system" in attributes or "db.system.name" in attributes):
            return SamplingResult(Decision.DROP)
        return ALWAYS_ON.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return "NoOrphanSql"


SAMPLER = ParentBased(root=NoOrphanSql())


def setup(service_name: str, otlp_endpoint: str | None = None, exporter: SpanExporter | None = None) -> bool:
    """Install tracing once per process (a later exporter is added to it). Returns whether tracing is on."""
    global _enabled, _provider
    if _enabled:
        if exporter is not None and _provider is not None:
            _provider.add_span_processor(SimpleSpanProcessor(exporter))
        return True
    if exporter is None and not otlp_endpoint:
        return False
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}), sampler=SAMPLER)
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    trace.set_tracer_provider(provider)
    _provider = provider
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    AsyncPGInstrumentor().instrument()
    _enabled = True
    return True


def enabled() -> bool:
    return _enabled


def server_interceptors() -> list:
    if not _enabled:
        return []
    from opentelemetry.instrumentation.grpc import aio_server_interceptor

    return [aio_server_interceptor()]


def client_interceptors() -> list:
    if not _enabled:
        return []
    from opentelemetry.instrumentation.grpc import aio_client_interceptors

    return list(aio_client_interceptors())
