"""python -m gateway: the HTTP/JSON gateway on GATEWAY_HOST:GATEWAY_PORT (127.0.0.1:8080),
routing every listed service's google.api.http rules to its gRPC server."""

from __future__ import annotations

import logging

from chassis import metrics, telemetry
from chassis.auth import JwksCache, TokenVerifier, identity_jwks_fetcher
from chassis.http import HttpHost
from chassis.server import run
from chassis.settings import ServiceSettings
from chassis.spec import listed_services
from gateway.app import Gateway, create_app
from gateway.cors import OriginPolicy, identity_origin_check
from gateway.limits import Limit, RateLimiter
from gateway.routes import build_routes
from gateway.settings import GatewaySettings

log = logging.getLogger(__name__)


def build(settings: GatewaySettings, *, services: list[str] | None = None) -> tuple[Gateway, HttpHost]:
    """The gateway and its host (not started), from settings."""
    routes = build_routes(services or listed_services())
    limiter = RateLimiter(settings.redis_url, prefix=settings.rate_limit_prefix,
                          per_address=Limit(settings.address_rate, settings.address_burst),
                          per_token=Limit(settings.token_rate, settings.token_burst),
                          per_tenant=Limit(settings.tenant_rate, settings.tenant_burst))
    verifier = TokenVerifier(JwksCache(identity_jwks_fetcher(settings.backend("identity"))))
    gw = Gateway(settings, routes, limiter=limiter, verifier=verifier)
    if "identity" in gw.channels:  # the organizations' CORS origins, asked on identity's channel
        gw.origins = OriginPolicy(identity_origin_check(gw.channels["identity"]),
                                  platform_origins=settings.cors_origins, ttl=settings.cors_cache_seconds,
                                  max_entries=settings.cors_cache_entries)
    endpoint = None
    metrics_port = settings.resolved_metrics_port()
    if metrics_port is not None:
        metrics.install("gateway")
        endpoint = metrics.MetricsEndpoint(settings.host, metrics_port)
    host = HttpHost("gateway", create_app(gw), host=settings.host, port=settings.port,
                    grace_seconds=settings.grace_seconds, drain_seconds=settings.drain_seconds,
                    on_stop=[gw.close], metrics=endpoint)
    return gw, host


async def main() -> None:
    telemetry.setup("gateway", ServiceSettings().otlp_endpoint)
    _, host = build(GatewaySettings())
    await host.serve_until_signalled()


if __name__ == "__main__":
    run(main)
