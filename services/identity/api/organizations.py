"""OrganizationService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.identity.v1 import organization_pb2, organization_service_pb2_grpc
from givance.identity.v1 import organization_service_pb2 as pb

from chassis.convert import timestamp
from chassis.resource import etag
from services.identity.api.caller import caller
from services.identity.handlers import lifecycle
from services.identity.handlers import organizations as handlers
from services.identity.handlers.deps import Deps
from services.identity.handlers.organizations import Organization, OrganizationFields

_STATES = {"active": organization_pb2.Organization.STATE_ACTIVE,
           "suspended": organization_pb2.Organization.STATE_SUSPENDED,
           "closing": organization_pb2.Organization.STATE_CLOSING}


_SIZES = {"startup": organization_pb2.Organization.COMPANY_SIZE_STARTUP,
          "sme": organization_pb2.Organization.COMPANY_SIZE_SME,
          "enterprise": organization_pb2.Organization.COMPANY_SIZE_ENTERPRISE}
_SIZE_NAMES = {number: name for name, number in _SIZES.items()}
_ADDRESS = ("line1", "line2", "city", "region", "postal_code", "country_code")


def org_to_proto(row: Organization) -> organization_pb2.Organization:
    out = organization_pb2.Organization(
        id=str(row.id), name=row.name, slug=row.slug,
        create_time=timestamp(row.created_at), update_time=timestamp(row.updated_at),
        domain=row.domain or "", mfa_required=row.mfa_required, etag=etag(row.version),
        allowed_origins=list(row.allowed_origins), state=_STATES.get(row.state, 0), state_reason=row.state_reason,
        description=row.description, logo_url=row.logo_url, website=row.website, industry=row.industry,
        company_size=_SIZES.get(row.company_size, 0), contact_email=row.contact_email,
        contact_phone=row.contact_phone, timezone=row.timezone, tax_id_masked=handlers.masked_tax_id(row),
        registration_number=row.registration_number,
        address=organization_pb2.OrganizationAddress(**{k: str(v) for k, v in (row.address or {}).items()
                                                         if k in _ADDRESS}),
    )
    if row.erase_at is not None:
        out.erase_time.CopyFrom(timestamp(row.erase_at))
    return out


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
        size = _SIZE_NAMES.get(o.company_size, "") if o.company_size in _SIZE_NAMES or not o.company_size \
            else f"unknown value {o.company_size}"
        profile = {"description": o.description, "logo_url": o.logo_url, "website": o.website, "industry": o.industry,
                   "company_size": size, "contact_email": o.contact_email, "contact_phone": o.contact_phone,
                   "address": handlers.Address(**{k: getattr(o.address, k) for k in _ADDRESS}),
                   "timezone": o.timezone, "tax_id": o.tax_id, "registration_number": o.registration_number}
        row = await handlers.update(self.db, caller()[1], org_id=o.id, etag=o.etag, patch=patch,
                                    mask=list(request.update_mask.paths), profile=profile,
                                    keyring=self.deps.keyring)
        return pb.UpdateOrganizationResponse(organization=org_to_proto(row))

    async def CreateOrganization(self, request: pb.CreateOrganizationRequest, ctx) -> pb.CreateOrganizationResponse:
        row = await lifecycle.create(self.deps, caller()[0], name=request.organization.name,
                                     slug=request.organization.slug, request_id=request.request_id)
        return pb.CreateOrganizationResponse(organization=org_to_proto(row))

    async def CloseOrganization(self, request: pb.CloseOrganizationRequest, ctx) -> pb.CloseOrganizationResponse:
        row = await lifecycle.close(self.deps, caller()[0], confirm_slug=request.confirm_slug, reason=request.reason)
        return pb.CloseOrganizationResponse(organization=org_to_proto(row))

    async def ReopenOrganization(self, request: pb.ReopenOrganizationRequest, ctx) -> pb.ReopenOrganizationResponse:
        return pb.ReopenOrganizationResponse(organization=org_to_proto(await lifecycle.reopen(self.deps, caller()[0])))

    async def CheckAllowedOrigin(self, request: pb.CheckAllowedOriginRequest, ctx) -> pb.CheckAllowedOriginResponse:
        return pb.CheckAllowedOriginResponse(
            allowed=await handlers.origin_allowed(self.db, request.origin, request.organization_id))

    async def ListMyOrganizations(self, request: pb.ListMyOrganizationsRequest, ctx
                                  ) -> pb.ListMyOrganizationsResponse:
        orgs, default = await handlers.list_mine(self.db, caller()[0])
        return pb.ListMyOrganizationsResponse(organizations=[org_to_proto(o) for o in orgs],
                                              default_organization_id=str(default) if default else "")
