"""The chassis' HTTP host: health endpoints, and a graceful shutdown that turns readiness off
first and lets an in-flight request finish."""

from __future__ import annotations

import asyncio

import httpx
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from chassis.http import HttpHost
from tests.helpers import eventually


async def test_health_readiness_and_a_graceful_stop():
    release, entered = asyncio.Event(), asyncio.Event()
    dependency_up = True

    async def slow(_request):
        entered.set()
        await release.wait()
        return PlainTextResponse("done")

    async def dependency() -> bool:
        return dependency_up

    host = HttpHost("test", Starlette(routes=[Route("/slow", slow)]), port=0, readiness=[dependency],
                    grace_seconds=5)
    await host.start()
    base = f"http://127.0.0.1:{host.bound_port}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/readyz")).status_code == 200
        dependency_up = False
        assert (await client.get("/readyz")).status_code == 503
        assert (await client.get("/healthz")).status_code == 200  # liveness never depends on it
        dependency_up = True

        in_flight = asyncio.create_task(client.get("/slow"))
        await entered.wait()
        stopping = asyncio.create_task(host.stop())
        await eventually(lambda: host.stopping, what="the shutdown to start")
        release.set()
        response = await in_flight
        assert response.status_code == 200 and response.text == "done"
        await stopping
    async with httpx.AsyncClient(base_url=base, timeout=2) as client:
        try:
            await client.get("/healthz")
            raise AssertionError("the host still answers after stop")
        except httpx.ConnectError:
            pass
