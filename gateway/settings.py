"""The gateway's settings (prefix GATEWAY_)."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Where each service's gRPC server listens (DESIGN's port table); GATEWAY_BACKENDS overrides,
# as JSON: {"crm": "crm:50052"}.
DEFAULT_BACKENDS = {"identity": "127.0.0.1:50051", "crm": "127.0.0.1:50052", "comms": "127.0.0.1:50053",
                    "ai": "127.0.0.1:50054", "billing": "127.0.0.1:50055"}


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8080
    backends: dict[str, str] = Field(default_factory=dict)
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Token buckets (requests per second, burst); a rate of 0 turns that limit off.
    address_rate: float = 50.0
    address_burst: int = 100
    token_rate: float = 20.0
    token_burst: int = 60
    tenant_rate: float = 100.0
    tenant_burst: int = 200
    # CORS (gateway.cors): each organization lists its origins in identity; these (a JSON list)
    # are the deployment's own front ends, allowed for every organization. An answer from
    # identity is kept this many seconds (a change applies within it), at most this many.
    cors_origins: list[str] = Field(default_factory=list)
    cors_cache_seconds: float = 30.0
    cors_cache_entries: int = 10_000
    # Prometheus /metrics (chassis.metrics.MetricsEndpoint) on GATEWAY_HOST. Unset: 9469 (beside
    # the services' 9464 and up), any free port when `port` is 0; 0 any free port; -1 off.
    metrics_port: int | None = None
    max_body_bytes: int = 1 << 20  # a unary call's JSON body
    max_upload_bytes: int = 256 << 20  # a client-streamed upload (ImportDonors' CSV)
    max_header_bytes: int = 16 << 10
    max_url_bytes: int = 8 << 10  # the path and the query string
    default_timeout: float = 30.0  # seconds, when the caller sends no deadline
    stream_timeout: float = 600.0
    max_timeout: float = 600.0
    grace_seconds: float = 10.0
    drain_seconds: float = 0.0
    rate_limit_prefix: str = "givance:gateway:rl"
    # The proxies in front (the ingress controller): addresses or networks whose x-forwarded-for
    # names the client (chassis.proxies); the rate limits per address and the address the
    # services see key on that. TRUSTED_PROXIES, as the services read it, unless
    # GATEWAY_TRUSTED_PROXIES says otherwise. Unset: the TCP peer is the client.
    trusted_proxies: str = Field("", validation_alias=AliasChoices(
        "GATEWAY_TRUSTED_PROXIES", "trusted_proxies", "TRUSTED_PROXIES"))

    def resolved_metrics_port(self) -> int | None:
        if self.metrics_port is not None:
            return None if self.metrics_port < 0 else self.metrics_port
        return 0 if self.port == 0 else 9469

    def backend(self, service: str) -> str:
        return self.backends.get(service) or DEFAULT_BACKENDS.get(service, "127.0.0.1:50051")
