"""OrganizationService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.identity.v1 import organization_pb2, organization_service_pb2_grpc
from givance.identity.v1 import organization_service_pb2 as pb

from chassis.convert import timestamp
from chassis.resource import etag
from services.identity.api.caller import caller
from services.identity.handlers import organizations as handlers
from services.identity.handlers.deps import Deps
from services.identity.handlers.organizations import Organization, OrganizationFields


def org_to_proto(row: Organization) -> organization_pb2.Organization:
    return organization_pb2.Organization(
        id=str(row.id), name=row.name, slug=row.slug,
        create_time=timestamp(row.created_at), update_time=timestamp(row.updated_at),
        domain=row.domain or "", mfa_required=row.mfa_required, etag=etag(row.version),
        allowed_origins=list(row.allowed_origins),
    )


class OrganizationServicer(organization_service_pb2_grpc.OrganizationServiceServicer):
    def __init__(self, deps: Deps):
        self.deps = deps
        self.db = deps.db

    async def GetOrganization(self, request: pb.GetOrganizationRequest, ctx) -> pb.GetOrganizationResponse:
        org = await handlers.get(self.db, caller()[1], request.id)
        return pb.GetOrganizationResponse(organization=org_to_proto(org))

    async def UpdateOrganization(self, request: pb.UpdateOrganizationRequest, ctx) -> pb.UpdateOrganizationResponse:
        o = request.organization
        patch = OrganizationFields(name=o.name, slug=o.slug, domain=o.domain, mfa_required=o.mfa_required,
                                   allowed_origins=tuple(o.allowed_origins))
        row = await handlers.update(self.db, caller()[1], org_id=o.id, etag=o.etag, patch=patch,
                                    mask=list(request.update_mask.paths))
        return pb.UpdateOrganizationResponse(organization=org_to_proto(row))

    async def CheckAllowedOrigin(self, request: pb.CheckAllowedOriginRequest, ctx) -> pb.CheckAllowedOriginResponse:
        return pb.CheckAllowedOriginResponse(
            allowed=await handlers.origin_allowed(self.db, request.origin, request.organization_id))

    async def ListMyOrganizations(self, request: pb.ListMyOrganizationsRequest, ctx
                                  ) -> pb.ListMyOrganizationsResponse:
        orgs, default = await handlers.list_mine(self.db, caller()[0])
        return pb.ListMyOrganizationsResponse(organizations=[org_to_proto(o) for o in orgs],
                                              default_organization_id=str(default) if default else "")
