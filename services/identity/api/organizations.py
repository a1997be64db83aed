"""OrganizationService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.identity.v1 import organization_pb2, organization_service_pb2_grpc
from givance.identity.v1 import organization_service_pb2 as pb

from chassis import context
from chassis.convert import timestamp
from services.identity.domain import members as member_rules
from services.identity.domain.organizations import OrganizationFields
from services.identity.handlers import organizations as handlers
from services.identity.handlers.accounts import Accounts


def org_to_proto(row: dict) -> organization_pb2.Organization:
    """Rows from sign-up carry no domain, MFA policy or version yet: their defaults."""
    return organization_pb2.Organization(
        id=str(row["id"]), name=row["name"], slug=row["slug"],
        create_time=timestamp(row["created_at"]), update_time=timestamp(row["updated_at"]),
        domain=row.get("domain") or "", mfa_required=bool(row.get("mfa_required", False)),
        etag=member_rules.etag(row.get("version") or 1),
    )


class OrganizationServicer(organization_service_pb2_grpc.OrganizationServiceServicer):
    def __init__(self, accounts: Accounts):
        self.accounts = accounts
        self.db = accounts.db

    async def GetOrganization(self, request: pb.GetOrganizationRequest, ctx) -> pb.GetOrganizationResponse:
        org = await handlers.get(self.db, context.current().tenant_id, request.id)
        return pb.GetOrganizationResponse(organization=org_to_proto(org))

    async def UpdateOrganization(self, request: pb.UpdateOrganizationRequest, ctx) -> pb.UpdateOrganizationResponse:
        o = request.organization
        patch = OrganizationFields(name=o.name, slug=o.slug, domain=o.domain, mfa_required=o.mfa_required)
        row = await handlers.update(self.db, context.current().tenant_id, org_id=o.id, etag=o.etag, patch=patch,
                                    mask=list(request.update_mask.paths))
        return pb.UpdateOrganizationResponse(organization=org_to_proto(row))

    async def ListMyOrganizations(self, request: pb.ListMyOrganizationsRequest, ctx
                                  ) -> pb.ListMyOrganizationsResponse:
        orgs, default = await handlers.list_mine(self.db, context.current().principal)
        return pb.ListMyOrganizationsResponse(organizations=[org_to_proto(o) for o in orgs],
                                              default_organization_id=str(default) if default else "")
