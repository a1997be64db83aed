"""Settings every service shares, read from the environment.

DATABASE_URL and RABBITMQ_URL are the suite-wide names (no prefix); everything a single
service needs lives in its own settings class with its own prefix (CRM_PORT, ...).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/givance"
DEFAULT_RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"
METRICS_BASE_PORT = 9464  # the Prometheus exporter's customary port


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    # Administrative connection: migrations and role setup. Services themselves connect
    # as their own unprivileged role (see app_database_url).
    database_url: str = Field(DEFAULT_DATABASE_URL, validation_alias=AliasChoices("DATABASE_URL"))
    rabbitmq_url: str = Field(DEFAULT_RABBITMQ_URL, validation_alias=AliasChoices("RABBITMQ_URL"))
    events_exchange: str = Field("givance.events", validation_alias=AliasChoices("EVENTS_EXCHANGE"))
    identity_address: str = Field("127.0.0.1:50051", validation_alias=AliasChoices("IDENTITY_ADDRESS"))
    otlp_endpoint: str | None = Field(None, validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT"))
    # Proxies whose x-forwarded-for is believed (the gateway, the ingress): addresses or networks,
    # comma-separated (chassis.proxies). Empty: the gRPC peer is the client.
    trusted_proxies: str = Field("", validation_alias=AliasChoices("TRUSTED_PROXIES"))

    host: str = "127.0.0.1"
    port: int = 0
    db_pool_size: int = 10
    # Every pooled connection's statement_timeout and idle_in_transaction_session_timeout (ms):
    # a runaway statement is cancelled, and a transaction left open (a client or handler that
    # stalls inside a unit of work) is ended by the server, its connection freed.
    db_statement_timeout_ms: int = 60_000
    db_idle_in_transaction_timeout_ms: int = 60_000
    # The unprivileged role this service connects as; defaults to givance_<service>.
    db_role: str = ""
    db_role_password: str | None = None
    grace_seconds: float = 10.0
    # A client stream (an import) that sends nothing for this long is ended: DEADLINE_EXCEEDED.
    stream_idle_seconds: float = 60.0
    # The largest request message the server accepts (chassis.server.ServiceHost.max_receive_bytes).
    grpc_max_receive_bytes: int = 4 * 1024 * 1024
    # After SIGTERM, how long health says NOT_SERVING before the server refuses new calls (the
    # time endpoints take to drop the pod; Kubernetes' preStop sleep does the same job there).
    drain_seconds: float = 0.0
    # Prometheus /metrics (chassis.metrics). Unset: 9464 + the service's offset from 50051 on a
    # fixed port (identity 9464, crm 9465, ...), an ephemeral one when `port` is 0; -1 turns it off.
    metrics_port: int | None = None

    def resolved_metrics_port(self) -> int | None:
        """The port /metrics listens on (0: any free one), or None when off."""
        if self.metrics_port is not None:
            return None if self.metrics_port < 0 else self.metrics_port
        if self.port == 0:
            return 0
        return METRICS_BASE_PORT + self.port - 50051 if 50051 <= self.port < 50151 else 0

    def public_http_ports(self) -> set[int]:
        """The fixed ports of the service's own public HTTP, besides gRPC and /metrics (comms'
        tracking on 8081, billing's webhooks on 8082): what its Deployment and the Dockerfile
        expose. A service with public HTTP says so by overriding this."""
        return set()

    def public_tcp_ports(self) -> set[int]:
        """Other fixed ports the service listens on when deployed, besides gRPC, /metrics and its
        public HTTP (comms' inbound SMTP): what its Deployment and the Dockerfile expose, and its
        Services publish (perhaps on another port: a load balancer on SMTP's 25)."""
        return set()

    # The password of this service's own broker user, givance-<service> (chassis.broker): set, the
    # service connects as that user (created by chassis.migrate); unset, as RABBITMQ_URL's user.
    broker_password: str | None = None

    # The service's platform service principal (chassis.tenant_tokens): the credential it trades
    # at identity for a token acting for one organization (<PREFIX>PRINCIPAL_CLIENT_ID, its name,
    # and <PREFIX>PRINCIPAL_CLIENT_SECRET, from `python -m services.identity.principals create`).
    # Unset: the service has no tenant tokens (what needs them says so).
    principal_client_id: str = ""
    principal_client_secret: str = ""
    # What the service's principal must be granted (a service's settings class says): what
    # `make run` grants the development principals, and what an operator grants in production.
    principal_permissions: ClassVar[tuple[str, ...]] = ()

    def service_amqp_url(self, service: str) -> str:
        """The broker URL this service connects with: its own user when it has a password."""
        from chassis.broker import service_user, with_user

        if not self.broker_password:
            return self.rabbitmq_url
        return with_user(self.rabbitmq_url, service_user(service), self.broker_password)

    def app_database_url(self, service: str) -> str:
        """The DSN (asyncpg form) of this service's own role: owns nothing, no BYPASSRLS."""
        url = make_url(self.database_url).set(
            drivername="postgresql+asyncpg",
            username=self.db_role or f"givance_{service}",
            password=self.db_role_password,
        )
        return url.render_as_string(hide_password=False)

    def admin_database_url(self) -> str:
        return make_url(self.database_url).set(drivername="postgresql+asyncpg").render_as_string(
            hide_password=False
        )


_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def plain_dsn(sqlalchemy_url: str) -> str:
    """asyncpg wants postgresql://, SQLAlchemy postgresql+asyncpg://. A loopback server with no
    sslmode given is reached without TLS: asyncpg's default (prefer) negotiates TLS on every
    connection and every cancel request, which protects nothing on loopback, and a cancel whose
    negotiation the server cuts short leaves a ConnectionError nobody retrieves (asyncpg#1310).
    Any other host keeps what the URL says."""
    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    if url.host in _LOOPBACK and not {"sslmode", "ssl"} & set(url.query):
        url = url.update_query_dict({"sslmode": "disable"})
    return url.render_as_string(hide_password=False)
