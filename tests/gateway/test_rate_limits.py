"""Rate limits live in Redis: two gateway processes share one budget per token, per tenant and
per address, and a refused request is 429 with Retry-After."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import uuid

import httpx
import pytest

from tests.helpers import eventually


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def two_gateways(identity_host, crm_host):
    """Two `python -m gateway` processes on one Redis prefix: a token may make 5 calls (burst),
    then one every 1000 seconds; the address and tenant limits are out of the way."""
    prefix = f"givance:test:rl:{uuid.uuid4().hex[:8]}"
    backends = {"identity": f"127.0.0.1:{identity_host.bound_port}", "crm": f"127.0.0.1:{crm_host.bound_port}"}
    procs, urls = [], []
    for _ in range(2):
        port = _free_port()
        env = {**os.environ, "GATEWAY_PORT": str(port), "GATEWAY_BACKENDS": json.dumps(backends),
               "GATEWAY_METRICS_PORT": "0",
               "GATEWAY_RATE_LIMIT_PREFIX": prefix, "GATEWAY_TOKEN_RATE": "0.001", "GATEWAY_TOKEN_BURST": "5",
               "GATEWAY_ADDRESS_RATE": "10000", "GATEWAY_ADDRESS_BURST": "10000",
               "GATEWAY_TENANT_RATE": "10000", "GATEWAY_TENANT_BURST": "10000"}
        procs.append(await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway", env=env))
        urls.append(f"http://127.0.0.1:{port}")
    async with httpx.AsyncClient(timeout=10) as client:
        async def up(url: str) -> bool:
            try:
                return (await client.get(f"{url}/readyz")).status_code == 200
            except httpx.TransportError:
                return False

        for url in urls:
            await eventually(lambda url=url: up(url), what=f"the gateway at {url}")
        yield client, urls
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        assert await p.wait() == 0


async def test_two_gateway_processes_share_a_tokens_budget_through_redis(two_gateways, tenant):
    client, (a, b) = two_gateways
    headers = {"authorization": f"Bearer {tenant.access_token}", "x-tenant-id": tenant.org_id}
    statuses = [(await client.get(f"{url}/v1/donors", headers=headers)).status_code for url in (a, b, a, b, a)]
    assert statuses == [200] * 5
    for url in (b, a):
        r = await client.get(f"{url}/v1/donors", headers=headers)
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) >= 1
        err = r.json()["error"]
        assert err["status"] == "RESOURCE_EXHAUSTED" and "RATE_LIMITED" in json.dumps(err["details"])
    # Another token (another user's) has its own budget.
    other = await client.post(f"{b}/v1/auth:signUp", json={
        "email": f"rl-{uuid.uuid4().hex[:8]}@example.org", "password": "correct horse battery staple",
        "firstName": "R", "lastName": "L", "organizationName": "Limits"})
    token = other.json()["tokens"]["accessToken"]
    r = await client.get(f"{a}/v1/donors", headers={"authorization": f"Bearer {token}",
                                                     "x-tenant-id": other.json()["organization"]["id"]})
    assert r.status_code == 200


async def test_the_address_is_the_trusted_proxys_x_forwarded_for(identity_host, crm_host):
    """Behind the ingress the TCP peer is the ingress controller: the gateway counts per address
    by the x-forwarded-for a trusted proxy wrote (rightmost untrusted), and only then."""
    from gateway.__main__ import build
    from gateway.settings import GatewaySettings

    async def statuses(trusted: str, forwarded: list[str]) -> list[int]:
        settings = GatewaySettings(
            port=0, grace_seconds=1, metrics_port=-1, trusted_proxies=trusted,
            rate_limit_prefix=f"givance:test:rl:{uuid.uuid4().hex[:8]}", address_rate=0.001, address_burst=1,
            backends={"identity": f"127.0.0.1:{identity_host.bound_port}", "crm": f"127.0.0.1:{crm_host.bound_port}"})
        _, host = build(settings)
        port = await host.start()
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
                return [(await client.get("/v1/donors", headers={"x-forwarded-for": f})).status_code
                        for f in forwarded]
        finally:
            await host.stop()

    clients = ["203.0.113.7", "198.51.100.2, 203.0.113.8", "203.0.113.7"]
    assert await statuses("127.0.0.1", clients) == [401, 401, 429]  # two clients, one of them twice
    assert await statuses("", clients) == [401, 429, 429]  # untrusted: one address, the peer
