"""OperatorService: what a platform operator does to a tenant (proto in, handler call, proto out)."""

from __future__ import annotations

from givance.identity.v1 import operator_service_pb2 as pb
from givance.identity.v1 import operator_service_pb2_grpc

from services.identity.api.caller import caller
from services.identity.api.organizations import org_to_proto
from services.identity.handlers import suspensions
from services.identity.handlers.deps import Deps


class OperatorServicer(operator_service_pb2_grpc.OperatorServiceServicer):
    def __init__(self, deps: Deps):
        self.deps = deps

    async def GetTenant(self, request: pb.GetTenantRequest, ctx) -> pb.GetTenantResponse:
        row = await suspensions.get_tenant(self.deps, caller()[0], request.organization_id)
        return pb.GetTenantResponse(organization=org_to_proto(row))

    async def SuspendOrganization(self, request: pb.SuspendOrganizationRequest, ctx
                                  ) -> pb.SuspendOrganizationResponse:
        row = await suspensions.suspend(self.deps, caller()[0], request.organization_id, request.reason)
        return pb.SuspendOrganizationResponse(organization=org_to_proto(row))

    async def ReactivateOrganization(self, request: pb.ReactivateOrganizationRequest, ctx
                                     ) -> pb.ReactivateOrganizationResponse:
        row = await suspensions.reactivate(self.deps, caller()[0], request.organization_id, request.reason)
        return pb.ReactivateOrganizationResponse(organization=org_to_proto(row))
