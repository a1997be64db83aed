"""The gateway's Prometheus metrics, on the same registry (and /metrics endpoint,
chassis.metrics.MetricsEndpoint) as the services':

- `gateway_request_duration_milliseconds` (histogram; its `_count` is the number of requests):
  by route (the rule's template, `GET /v1/donors/{id}`, so ids never make new series;
  `unmatched` for no route, `OPTIONS` for CORS preflights) and HTTP status. For a stream the
  time is until the response starts;
- `gateway_rate_limited_total`: requests refused with 429, by route;
- `gateway_cors_lookups_total`: origins looked up in identity (cache misses), by outcome.

Children are cached per label values: prometheus_client's labelled child costs ~1 us a request.

Each request also writes an access-log line (logger gateway.access, as chassis.access does for
the services' calls): DEBUG when it succeeded, INFO when it failed, with the route, the status,
the duration, the request id and the tenant header (chassis.logs adds the trace and span ids).
"""

from __future__ import annotations

import logging
import time

import prometheus_client as prom

# The services' buckets (chassis.metrics.DURATION), in milliseconds.
DURATION_BUCKETS = (0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000)
REQUESTS = prom.Histogram("gateway_request_duration_milliseconds", "HTTP requests the gateway answered",
                          ["route", "status"], buckets=DURATION_BUCKETS)
RATE_LIMITED = prom.Counter("gateway_rate_limited", "requests refused by a rate limit (429)", ["route"])
CORS_LOOKUPS = prom.Counter("gateway_cors_lookups", "CORS origins looked up in identity (cache misses)",
                            ["outcome"])

_children: dict[tuple[str, int], prom.metrics.Histogram] = {}
access = logging.getLogger("gateway.access")


def observe(route: str, status: int, start: float, request_id: str = "", tenant: str = "") -> None:
    ms = (time.perf_counter() - start) * 1000
    key = (route, status)
    child = _children.get(key)
    if child is None:
        child = _children[key] = REQUESTS.labels(route, str(status))
    child.observe(ms)
    level = logging.DEBUG if status < 400 else logging.INFO
    if access.isEnabledFor(level):
        extra = {"route": route, "http_status": status, "duration_ms": round(ms, 2), "service": "gateway"}
        if request_id:
            extra["request_id"] = request_id
        if tenant:
            extra["tenant_id"] = tenant[:64]
        access.log(level, "%s %d %.1fms", route, status, ms, extra=extra)
