"""identity over gRPC: a service account's access token (OAuth 2.0 client credentials)."""

from __future__ import annotations

import grpc
from givance.identity.v1 import identity_service_pb2, identity_service_pb2_grpc

from chassis.errors import Unauthenticated, Unavailable


class IdentityTokens:
    def __init__(self, address: str, *, timeout: float = 10.0):
        self.address = address
        self.timeout = timeout
        self._channel: grpc.aio.Channel | None = None

    async def issue(self, client_id: str, client_secret: str) -> tuple[str, float]:
        """(access token, expiry as a UNIX time)."""
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(self.address)
        stub = identity_service_pb2_grpc.IdentityServiceStub(self._channel)
        try:
            r = await stub.IssueServiceToken(identity_service_pb2.IssueServiceTokenRequest(
                client_id=client_id, client_secret=client_secret), timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise Unauthenticated(f"identity refused ai's service account: {exc.details()}") from None
            raise Unavailable(f"identity could not be reached ({exc.code().name})") from None
        return r.access_token, r.expire_time.seconds + r.expire_time.nanos / 1e9

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
