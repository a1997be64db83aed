"""TenantTokenService: a platform service principal's token for one organization (internal)."""

from __future__ import annotations

from givance.identity.v1 import tenant_token_service_pb2 as pb
from givance.identity.v1 import tenant_token_service_pb2_grpc

from chassis.convert import timestamp
from services.identity.handlers import tenant_tokens
from services.identity.handlers.deps import Deps


class TenantTokenServicer(tenant_token_service_pb2_grpc.TenantTokenServiceServicer):
    def __init__(self, deps: Deps):
        self.deps = deps

    async def IssueTenantToken(self, request: pb.IssueTenantTokenRequest, ctx) -> pb.IssueTenantTokenResponse:
        t = await tenant_tokens.issue(self.deps, request.client_id, request.client_secret, request.organization_id,
                                      list(request.permissions))
        return pb.IssueTenantTokenResponse(access_token=t.access_token, expire_time=timestamp(t.expires_at),
                                           permissions=t.permissions, audience=t.audience)
