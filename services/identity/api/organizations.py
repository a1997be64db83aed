"""OrganizationService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.identity.v1 import organization_pb2, organization_service_pb2_grpc
from givance.identity.v1 import organization_service_pb2 as pb

from chassis import context
from chassis.convert import timestamp
from services.identity.handlers.accounts import Accounts


def org_to_proto(row: dict) -> organization_pb2.Organization:
    return organization_pb2.Organization(
        id=str(row["id"]), name=row["name"], slug=row["slug"],
        create_time=timestamp(row["created_at"]), update_time=timestamp(row["updated_at"]),
    )


class OrganizationServicer(organization_service_pb2_grpc.OrganizationServiceServicer):
    def __init__(self, accounts: Accounts):
        self.accounts = accounts

    async def GetOrganization(self, request: pb.GetOrganizationRequest, ctx) -> pb.GetOrganizationResponse:
        org = await self.accounts.get_organization(context.current().tenant_id, request.id)
        return pb.GetOrganizationResponse(organization=org_to_proto(org))
