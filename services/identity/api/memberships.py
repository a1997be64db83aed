"""MembershipService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.identity.v1 import member_pb2, membership_service_pb2_grpc
from givance.identity.v1 import membership_service_pb2 as pb

from chassis.convert import timestamp
from chassis.resource import etag
from services.identity.api.caller import bearer_token, caller
from services.identity.api.identity import tokens_to_proto
from services.identity.handlers import invitations, members, roles
from services.identity.handlers.deps import Deps
from services.identity.handlers.invitations import Invitation, invitation_state
from services.identity.handlers.members import Member
from services.identity.handlers.roles import Role

_MEMBER_STATE = {"active": member_pb2.MEMBER_STATE_ACTIVE, "suspended": member_pb2.MEMBER_STATE_SUSPENDED}
_INVITATION_STATE = {
    "pending": member_pb2.INVITATION_STATE_PENDING,
    "accepted": member_pb2.INVITATION_STATE_ACCEPTED,
    "revoked": member_pb2.INVITATION_STATE_REVOKED,
    "expired": member_pb2.INVITATION_STATE_EXPIRED,
}


def member_to_proto(row: Member) -> member_pb2.Member:
    overrides = row.overrides
    return member_pb2.Member(
        user_id=str(row.user_id), email=row.email, first_name=row.first_name or "",
        last_name=row.last_name or "", role=row.role_name,
        state=_MEMBER_STATE.get(row.status, member_pb2.MEMBER_STATE_UNSPECIFIED),
        overrides=member_pb2.PermissionOverrides(grant=list(overrides.grant), deny=list(overrides.deny)),
        join_time=timestamp(row.joined_at), etag=etag(row.version),
    )


def invitation_to_proto(row: Invitation) -> member_pb2.Invitation:
    return member_pb2.Invitation(
        id=str(row.id), email=row.email, role=row.role_name,
        state=_INVITATION_STATE[invitation_state(row)], invited_by=str(row.invited_by),
        expire_time=timestamp(row.expires_at), create_time=timestamp(row.created_at),
    )


def role_to_proto(row: Role) -> member_pb2.Role:
    return member_pb2.Role(
        id=str(row.id), name=row.name, description=row.description or "",
        permissions=list(row.permissions), system=row.system,
        etag=etag(row.version) if row.version is not None else "",
    )


class MembershipServicer(membership_service_pb2_grpc.MembershipServiceServicer):
    def __init__(self, deps: Deps):
        self.deps = deps

    async def ListMembers(self, request: pb.ListMembersRequest, ctx) -> pb.ListMembersResponse:
        rows, token = await members.list_members(self.deps.db, caller()[1], request.page_size,
                                                 request.page_token)
        return pb.ListMembersResponse(members=[member_to_proto(r) for r in rows], next_page_token=token)

    async def UpdateMember(self, request: pb.UpdateMemberRequest, ctx) -> pb.UpdateMemberResponse:
        principal, org = caller()
        m = request.member
        overrides = (list(m.overrides.grant), list(m.overrides.deny)) if m.HasField("overrides") else None
        row = await members.update_member(self.deps, principal, org, user_id=m.user_id, role=m.role,
                                          overrides=overrides, etag=m.etag)
        return pb.UpdateMemberResponse(member=member_to_proto(row))

    async def SuspendMember(self, request: pb.SuspendMemberRequest, ctx) -> pb.SuspendMemberResponse:
        principal, org = caller()
        row = await members.suspend_member(self.deps, principal, org, request.user_id)
        return pb.SuspendMemberResponse(member=member_to_proto(row))

    async def ReactivateMember(self, request: pb.ReactivateMemberRequest, ctx) -> pb.ReactivateMemberResponse:
        principal, org = caller()
        row = await members.reactivate_member(self.deps, principal, org, request.user_id)
        return pb.ReactivateMemberResponse(member=member_to_proto(row))

    async def RemoveMember(self, request: pb.RemoveMemberRequest, ctx) -> pb.RemoveMemberResponse:
        principal, org = caller()
        await members.remove_member(self.deps, principal, org, request.user_id)
        return pb.RemoveMemberResponse()

    async def CreateInvitation(self, request: pb.CreateInvitationRequest, ctx) -> pb.CreateInvitationResponse:
        principal, org = caller()
        row = await invitations.create_invitation(self.deps, principal, org, email=request.email, role=request.role,
                                                  request_id=request.request_id)
        return pb.CreateInvitationResponse(invitation=invitation_to_proto(row))

    async def ListInvitations(self, request: pb.ListInvitationsRequest, ctx) -> pb.ListInvitationsResponse:
        rows, token = await invitations.list_invitations(self.deps.db, caller()[1], request.page_size,
                                                         request.page_token)
        return pb.ListInvitationsResponse(invitations=[invitation_to_proto(r) for r in rows], next_page_token=token)

    async def RevokeInvitation(self, request: pb.RevokeInvitationRequest, ctx) -> pb.RevokeInvitationResponse:
        row = await invitations.revoke_invitation(self.deps.db, caller()[1], request.id)
        return pb.RevokeInvitationResponse(invitation=invitation_to_proto(row))

    async def AcceptInvitation(self, request: pb.AcceptInvitationRequest, ctx) -> pb.AcceptInvitationResponse:
        result = await invitations.accept_invitation(self.deps, token=request.token, password=request.password,
                                                     first_name=request.first_name, last_name=request.last_name,
                                                     access_token=bearer_token(ctx))
        if result.tokens is None:
            return pb.AcceptInvitationResponse()
        return pb.AcceptInvitationResponse(tokens=tokens_to_proto(result.tokens))

    async def ListRoles(self, request: pb.ListRolesRequest, ctx) -> pb.ListRolesResponse:
        rows = await roles.list_roles(self.deps.db, caller()[1])
        return pb.ListRolesResponse(roles=[role_to_proto(r) for r in rows])

    async def CreateRole(self, request: pb.CreateRoleRequest, ctx) -> pb.CreateRoleResponse:
        principal, org = caller()
        r = request.role
        row = await roles.create_role(self.deps.db, principal, org, name=r.name, description=r.description,
                                      permissions=list(r.permissions), request_id=request.request_id)
        return pb.CreateRoleResponse(role=role_to_proto(row))

    async def UpdateRole(self, request: pb.UpdateRoleRequest, ctx) -> pb.UpdateRoleResponse:
        principal, org = caller()
        r = request.role
        row = await roles.update_role(self.deps, principal, org, role_id=r.id, name=r.name, description=r.description,
                                      permissions=list(r.permissions), etag=r.etag)
        return pb.UpdateRoleResponse(role=role_to_proto(row))

    async def DeleteRole(self, request: pb.DeleteRoleRequest, ctx) -> pb.DeleteRoleResponse:
        await roles.delete_role(self.deps.db, caller()[1], request.id)
        return pb.DeleteRoleResponse()
