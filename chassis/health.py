"""grpc.health.v1 for a server that shuts down gracefully.

Like grpcio-health-checking's asyncio servicer (Check, Watch, set, enter_graceful_shutdown),
with one difference that matters: at a graceful shutdown every Watch stream is sent
NOT_SERVING and then ends. grpcio's keeps its Watch streams open for ever, so a server's
`stop(grace)` waited out the whole grace period for them, and calls that reached the server
meanwhile were CANCELLED at its end instead of being refused at once.
"""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVICE_NAME = "grpc.health.v1.Health"
Status = health_pb2.HealthCheckResponse.ServingStatus


class HealthServicer(health_pb2_grpc.HealthServicer):
    def __init__(self) -> None:
        self._status: dict[str, Status] = {}
        self._changed = asyncio.Condition()
        self._shutting_down = False

    async def Check(self, request: health_pb2.HealthCheckRequest, context) -> health_pb2.HealthCheckResponse:
        status = self._status.get(request.service)
        if status is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return health_pb2.HealthCheckResponse(status=status)

    async def Watch(self, request: health_pb2.HealthCheckRequest, context) -> None:
        last = None
        while True:
            status = self._status.get(request.service, health_pb2.HealthCheckResponse.SERVICE_UNKNOWN)
            if status != last:
                await context.write(health_pb2.HealthCheckResponse(status=status))
                last = status
            if self._shutting_down:
                return  # NOT_SERVING was sent: the stream ends, so the server's grace is not spent on it
            async with self._changed:
                await self._changed.wait()

    async def set(self, service: str, status: Status) -> None:
        """Set a service's status; ignored once a graceful shutdown began."""
        if not self._shutting_down:
            await self._set(service, status)

    async def _set(self, service: str, status: Status) -> None:
        self._status[service] = status
        async with self._changed:
            self._changed.notify_all()

    async def enter_graceful_shutdown(self) -> None:
        """Every service NOT_SERVING, for good; every Watch stream is told so and ends."""
        if self._shutting_down:
            return
        self._shutting_down = True
        for service in list(self._status):
            self._status[service] = health_pb2.HealthCheckResponse.NOT_SERVING
        async with self._changed:
            self._changed.notify_all()
