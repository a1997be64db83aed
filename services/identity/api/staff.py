"""StaffService: proto in, handler call, proto out. No reply ever carries an OAuth token."""

from __future__ import annotations

from givance.identity.v1 import staff_service_pb2 as pb
from givance.identity.v1 import staff_service_pb2_grpc

from chassis.convert import timestamp
from services.identity.api.caller import caller
from services.identity.handlers import staff
from services.identity.handlers.deps import Deps
from services.identity.handlers.staff import StaffProfile

_PROVIDERS = {pb.MAIL_PROVIDER_GMAIL: "gmail", pb.MAIL_PROVIDER_MICROSOFT: "microsoft"}


def profile_to_proto(row: StaffProfile) -> pb.StaffProfile:
    return pb.StaffProfile(
        user_id=str(row.user_id), email_signature=row.email_signature or "",
        gmail_email=row.gmail_email or "", microsoft_email=row.microsoft_email or "",
        active=bool(row.is_active), update_time=timestamp(row.updated_at),
    )


class StaffServicer(staff_service_pb2_grpc.StaffServiceServicer):
    def __init__(self, deps: Deps):
        self.deps = deps

    async def GetStaffProfile(self, request: pb.GetStaffProfileRequest, ctx) -> pb.GetStaffProfileResponse:
        principal, org = caller()
        return pb.GetStaffProfileResponse(profile=profile_to_proto(await staff.get(self.deps.db, principal, org,
                                                                                         request.user_id)))

    async def UpdateStaffProfile(self, request: pb.UpdateStaffProfileRequest, ctx) -> pb.UpdateStaffProfileResponse:
        principal, org = caller()
        row = await staff.update_signature(self.deps.db, principal, org, request.email_signature)
        return pb.UpdateStaffProfileResponse(profile=profile_to_proto(row))

    async def ConnectMailbox(self, request: pb.ConnectMailboxRequest, ctx) -> pb.ConnectMailboxResponse:
        principal, org = caller()
        row = await staff.connect_mailbox(self.deps, principal, org, provider=_PROVIDERS.get(request.provider, ""),
                                               email=request.email, refresh_token=request.refresh_token)
        return pb.ConnectMailboxResponse(profile=profile_to_proto(row))

    async def DisconnectMailbox(self, request: pb.DisconnectMailboxRequest, ctx) -> pb.DisconnectMailboxResponse:
        principal, org = caller()
        row = await staff.disconnect_mailbox(self.deps.db, principal, org, _PROVIDERS.get(request.provider, ""))
        return pb.DisconnectMailboxResponse(profile=profile_to_proto(row))
