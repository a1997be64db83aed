"""grpc.health.v1 Watch works through the server interceptor (a streaming handler that writes
with context.write rather than yielding), as Kubernetes and load balancers use it."""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


async def test_health_watch_streams_the_status(crm_host):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{crm_host.bound_port}") as ch:
        call = health_pb2_grpc.HealthStub(ch).Watch(health_pb2.HealthCheckRequest())
        statuses = []
        while not statuses or statuses[-1] != health_pb2.HealthCheckResponse.SERVING:  # ready a moment after start
            statuses.append((await asyncio.wait_for(call.read(), 20)).status)
        call.cancel()
