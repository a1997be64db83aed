"""The gateway's Prometheus metrics (requests by route and status, latency, rate-limit refusals,
CORS lookups) on its /metrics endpoint, and the Grafana dashboard charts only what is exported."""

from __future__ import annotations

import io
import json
import logging
import re
import uuid

import httpx
import pytest

from chassis import logs
from tests.e2e.test_observability import DASHBOARD, samples, scrape
from tests.gateway.test_gateway import sign_up


@pytest.fixture
async def http(gateway_host):
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway_host.bound_port}", timeout=30) as client:
        yield client


def count(text: str, route: str, status: str) -> float:
    return sum(samples(text, "gateway_request_duration_milliseconds_count", route=route, status=status))


async def test_requests_are_counted_by_route_and_status(http, gateway_host):
    auth = await sign_up(http)
    before = await scrape(gateway_host)
    assert (await http.get(f"/v1/donors/{uuid.uuid4()}", headers=auth)).status_code == 404
    assert (await http.get("/v1/donors", headers=auth)).status_code == 200
    assert (await http.get("/v1/nothing-here")).status_code == 404
    await http.options("/v1/donors", headers={"origin": f"https://m-{uuid.uuid4().hex[:6]}.example.org",
                                              "access-control-request-method": "GET"})
    after = await scrape(gateway_host)
    assert count(after, "GET /v1/donors/{id}", "404") == count(before, "GET /v1/donors/{id}", "404") + 1
    assert count(after, "GET /v1/donors", "200") == count(before, "GET /v1/donors", "200") + 1
    assert count(after, "unmatched", "404") == count(before, "unmatched", "404") + 1
    assert count(after, "OPTIONS", "403") == count(before, "OPTIONS", "403") + 1
    assert samples(after, "gateway_request_duration_milliseconds_bucket", route="GET /v1/donors", le="+Inf")
    assert sum(samples(after, "gateway_cors_lookups_total", outcome="refused")) >= 1
    # no id in any route label
    assert not re.search(r'route="[^"]*[0-9a-f]{8}-[0-9a-f]{4}', after)


async def test_rate_limit_refusals_are_counted(gateway_host, identity_host, crm_host):
    from gateway.__main__ import build
    from gateway.settings import GatewaySettings

    settings = GatewaySettings(
        port=0, grace_seconds=1, metrics_port=-1, rate_limit_prefix=f"givance:test:rl:{uuid.uuid4().hex[:8]}",
        backends={"identity": f"127.0.0.1:{identity_host.bound_port}", "crm": f"127.0.0.1:{crm_host.bound_port}"},
        address_rate=0.001, address_burst=1)
    _, host = build(settings)
    port = await host.start()
    try:
        before = sum(samples(await scrape(gateway_host), "gateway_rate_limited_total", route="GET /v1/donors"))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            statuses = [(await client.get("/v1/donors")).status_code for _ in range(2)]
        assert statuses == [401, 429]
        after = sum(samples(await scrape(gateway_host), "gateway_rate_limited_total", route="GET /v1/donors"))
        assert after == before + 1
    finally:
        await host.stop()


async def test_the_dashboard_charts_the_gateway_with_exported_metrics(http, gateway_host):
    await http.get("/v1/donors")
    exported = {line.split("{")[0].split(" ")[0] for line in (await scrape(gateway_host)).splitlines()
                if line and line[0] != "#"}
    exported |= {"gateway_rate_limited_total", "gateway_cors_lookups_total"}  # counters show once counted
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    charted = {n for e in exprs for n in re.findall(r"\b(gateway_\w+)", e)}
    assert {"gateway_request_duration_milliseconds_count", "gateway_request_duration_milliseconds_bucket",
            "gateway_rate_limited_total"} <= charted
    assert charted <= exported, charted - exported


async def test_each_request_writes_one_json_access_line(http):
    auth = await sign_up(http)
    stream = io.StringIO()
    handler = logs.handler(stream)
    access = logging.getLogger("gateway.access")
    level = access.level
    access.addHandler(handler)
    access.setLevel(logging.INFO)  # as LOG_LEVEL's default sets it
    try:
        r = await http.get(f"/v1/donors/{uuid.uuid4()}", headers={**auth, "x-request-id": "req-log-1"})
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
    assert r.status_code == 404
    (line,) = [json.loads(x) for x in stream.getvalue().splitlines() if "req-log-1" in x]
    assert line["route"] == "GET /v1/donors/{id}" and line["http_status"] == 404 and line["level"] == "INFO"
    assert line["tenant_id"] == auth["x-tenant-id"] and line["request_id"] == "req-log-1"
    assert auth["authorization"].split()[1] not in stream.getvalue()
