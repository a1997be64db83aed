"""A service, declared once: what it is called, its settings, its servicers, the events it
consumes and what else runs beside its server. The chassis builds the host from it.

    SPEC = ServiceSpec(name="crm", settings=CrmSettings, servicers=servicers,
                       subscriptions=SUBSCRIPTIONS, audits_reads=True)

`services/<name>/__main__.py` holds the SPEC (the chassis finds it there: `load(name)`) and
serves it (`SPEC.serve()`). The name is also the service's schema, its database role
(givance_<name>) and its telemetry name. Building, in this order:

1. telemetry; the Database of the service's own role; the revocation list; the read-audit
   batcher when `audits_reads`;
2. `dependencies(built)`, if given: the service's own objects (loaded keys, hashers, clients),
   kept as `built.own`;
3. the token verifier: keys from `jwks(built)` if given, else identity's JWKS over gRPC at
   IDENTITY_ADDRESS; it also refuses revoked memberships and sessions (chassis.revocation),
   listed from `revocations(built)` if given, else identity's ListRevocations at IDENTITY_ADDRESS;
4. `servicers(built)`: the servicer instances. Each is registered under the full name its
   generated base class declares (DonorServicer(donor_service_pb2_grpc.DonorServiceServicer)
   -> givance.crm.v1.DonorService), so no service name is written twice;
5. `background(built)`: coroutine functions run beside the server (cancelled at stop) or
   workers with run() and stop() (stopped gracefully); then the read audits, the outbox relay,
   the revocation listener and one consumer per subscription. The service is ready (health) once
   its database answers, its broker connection is up and the revocations in force are listed.

The list of services is `[tool.givance] services` in pyproject.toml (`listed_services()`),
in start order; the Makefile, chassis.migrate, tools.runall, the tests, bench and deploy read it.
"""

from __future__ import annotations

import importlib
import tomllib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from chassis import metrics, telemetry
from chassis.audit import ReadAudit
from chassis.auth import JwksCache, JwksFetcher, TokenVerifier, audiences, identity_jwks_fetcher
from chassis.consumer import Consumer, Subscription, declare_subscriptions
from chassis.db import Database, create_engine
from chassis.outbox import OutboxRelay
from chassis.revocation import RevocationList, RevocationListener, RevocationSource, identity_revocation_source
from chassis.server import Registration, ServiceHost, run
from chassis.settings import ServiceSettings, plain_dsn

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"

S = TypeVar("S", bound=ServiceSettings)
Background = Callable[[], Awaitable[None]]


def listed_services() -> list[str]:
    """Every service of the suite, in start order ([tool.givance] services in pyproject.toml)."""
    with PYPROJECT.open("rb") as f:
        return list(tomllib.load(f)["tool"]["givance"]["services"])


def listed_http() -> list[str]:
    """The suite's HTTP apps besides the gRPC services, run as `python -m <module>` after them
    ([tool.givance] http in pyproject.toml: the gateway today)."""
    with PYPROJECT.open("rb") as f:
        return list(tomllib.load(f)["tool"]["givance"].get("http", []))


def load(name: str) -> ServiceSpec:
    """A service's SPEC, declared in services/<name>/__main__.py (found by convention, the way
    Alembic finds env.py: the chassis never imports a service by name)."""
    spec = importlib.import_module(f"services.{name}.__main__").SPEC
    if spec.name != name:
        raise ValueError(f"services/{name}/__main__.py declares the service {spec.name!r}")
    return spec


def registration(servicer: object) -> Registration:
    """Register a servicer under the service its generated base class was generated for."""
    for base in type(servicer).__mro__:
        if base.__module__.endswith("_pb2_grpc") and base.__name__.endswith("Servicer"):
            grpc_module = importlib.import_module(base.__module__)
            messages = importlib.import_module(base.__module__.removesuffix("_grpc"))
            service = messages.DESCRIPTOR.services_by_name[base.__name__.removesuffix("Servicer")]
            return Registration(service.full_name, getattr(grpc_module, f"add_{base.__name__}_to_server"), servicer)
    raise TypeError(f"{type(servicer).__name__} does not subclass a generated *Servicer class")


@dataclass
class Built(Generic[S]):
    """What the chassis has built for one service; the spec's factories read it."""

    name: str
    settings: S
    db: Database
    revocations: RevocationList
    reads: ReadAudit | None = None  # the read-audit batcher, when the spec audits reads
    own: Any = None  # what the spec's `dependencies` hook returned
    verifier: TokenVerifier | None = None  # set before `servicers` is called


@dataclass(frozen=True)
class ServiceSpec(Generic[S]):
    name: str
    settings: type[S]
    servicers: Callable[[Built[S]], Iterable[object]]
    subscriptions: Sequence[Subscription] = ()
    audits_reads: bool = False
    dependencies: Callable[[Built[S]], Awaitable[Any]] | None = None
    jwks: Callable[[Built[S]], JwksFetcher] | None = None
    background: Callable[[Built[S]], Iterable[Any]] | None = None
    revocations: Callable[[Built[S]], RevocationSource] | None = None

    async def build(self, settings: S | None = None, *, verifier: TokenVerifier | None = None) -> ServiceHost:
        """The service's host, ready to start. `verifier` replaces the one built from `jwks`."""
        s = settings if settings is not None else self.settings()
        telemetry.setup(self.name, s.otlp_endpoint)
        app_url = s.app_database_url(self.name)
        db = Database(create_engine(app_url, pool_size=s.db_pool_size, application_name=self.name,
                                    statement_timeout_ms=s.db_statement_timeout_ms,
                                    idle_in_transaction_timeout_ms=s.db_idle_in_transaction_timeout_ms), self.name)
        built = Built(self.name, s, db, RevocationList(), ReadAudit(db) if self.audits_reads else None)
        if self.dependencies is not None:
            built.own = await self.dependencies(built)
        fetch = self.jwks(built) if self.jwks is not None else identity_jwks_fetcher(s.identity_address)
        built.verifier = verifier or TokenVerifier(JwksCache(fetch), audience=audiences(self.name))
        built.verifier.extra_checks.append(built.revocations.check)
        host = ServiceHost(name=self.name, host=s.host, port=s.port, verifier=built.verifier,
                           grace_seconds=s.grace_seconds, drain_seconds=s.drain_seconds,
                           max_receive_bytes=s.grpc_max_receive_bytes,
                           trusted_proxies=s.trusted_proxies,
                           registrations=[registration(x) for x in self.servicers(built)])
        for item in self.background(built) if self.background is not None else ():
            _run_beside(host, item)
        if built.reads is not None:
            _run_beside(host, built.reads)  # batched read audits flush before the relay stops
        self._attach_event_machinery(host, built, plain_dsn(app_url))
        return host

    def _attach_event_machinery(self, host: ServiceHost, built: Built[S], dsn: str) -> None:
        """What every service runs beside its gRPC server: the outbox relay of its schema, the
        revocation listener (membership and session revocations), and one consumer per subscription."""
        s = built.settings
        amqp_url = s.service_amqp_url(self.name)  # its own broker user, when it has one (chassis.broker)
        _run_beside(host, OutboxRelay(dsn, built.db.schema, amqp_url, s.events_exchange))
        source = (self.revocations(built) if self.revocations is not None
                  else identity_revocation_source(s.identity_address))
        listener = RevocationListener(amqp_url, s.events_exchange, built.revocations, source)
        _run_beside(host, listener)
        # Not ready until the revocations in force are listed: else revoked tokens would pass.
        host.readiness += [built.db.ping, listener.connected, built.revocations.is_loaded]
        for sub in self.subscriptions:
            _run_beside(host, Consumer(built.db, amqp_url, s.events_exchange, sub.queue, sub.bindings,
                                       sub.handler, max_attempts=sub.max_attempts, prefetch=sub.prefetch,
                                       operator_url=s.rabbitmq_url))
        metrics_port = s.resolved_metrics_port()
        if metrics_port is not None:
            metrics.install(self.name)
            host.metrics = metrics.MetricsEndpoint(s.host, metrics_port)
            _run_beside(host, host.metrics)
            host.metrics.sampler = metrics.Sampler(self.name, built.db, s.rabbitmq_url,
                                                   [sub.queue for sub in self.subscriptions])
            _run_beside(host, host.metrics.sampler)
        host.on_stop.append(built.db.dispose)

    async def declare_bus(self, amqp_url: str, exchange: str) -> int:
        """Declare the queues and bindings of the service's subscriptions (migrations, tests):
        an event published before its consumer first starts waits in its queue."""
        await declare_subscriptions(amqp_url, exchange, self.subscriptions)
        return len(self.subscriptions)

    def serve(self) -> None:
        """`python -m services.<name>`: build from the environment, serve until SIGTERM."""

        async def main() -> None:
            host = await self.build()
            await host.serve_until_signalled()

        run(main)


def _run_beside(host: ServiceHost, item: Any) -> None:
    """A worker (run() and stop()) is stopped gracefully; a bare coroutine function is cancelled."""
    if hasattr(item, "run") and hasattr(item, "stop"):
        host.background.append(item.run)
        host.workers.append(item)
    else:
        host.background.append(item)
