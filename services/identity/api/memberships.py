"""MembershipService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.identity.v1 import member_pb2, membership_service_pb2_grpc
from givance.identity.v1 import membership_service_pb2 as pb

from chassis import context
from chassis.convert import timestamp
from services.identity.api.identity import _tokens as tokens_to_proto
from services.identity.domain import members as rules
from services.identity.handlers.accounts import Accounts
from services.identity.handlers.deps import Deps
from services.identity.handlers.members import Members, invitation_role, invitation_state

_MEMBER_STATE = {rules.ACTIVE: member_pb2.MEMBER_STATE_ACTIVE, rules.SUSPENDED: member_pb2.MEMBER_STATE_SUSPENDED}
_INVITATION_STATE = {
    rules.INVITATION_PENDING: member_pb2.INVITATION_STATE_PENDING,
    rules.INVITATION_ACCEPTED: member_pb2.INVITATION_STATE_ACCEPTED,
    rules.INVITATION_REVOKED: member_pb2.INVITATION_STATE_REVOKED,
    rules.INVITATION_EXPIRED: member_pb2.INVITATION_STATE_EXPIRED,
}


def member_to_proto(row: dict) -> member_pb2.Member:
    overrides = rules.Overrides.from_json(row["permissions_override"])
    return member_pb2.Member(
        user_id=str(row["user_id"]), email=row["email"], first_name=row["first_name"] or "",
        last_name=row["last_name"] or "", role=rules.RoleRef(row["role"], row["custom_role_id"]).api_name,
        state=_MEMBER_STATE.get(row["status"], member_pb2.MEMBER_STATE_UNSPECIFIED),
        overrides=member_pb2.PermissionOverrides(grant=list(overrides.grant), deny=list(overrides.deny)),
        join_time=timestamp(row["joined_at"]), etag=rules.etag(row["version"]),
    )


def invitation_to_proto(row: dict) -> member_pb2.Invitation:
    return member_pb2.Invitation(
        id=str(row["id"]), email=row["email"], role=invitation_role(row),
        state=_INVITATION_STATE[invitation_state(row)], invited_by=str(row["invited_by"]),
        expire_time=timestamp(row["expires_at"]), create_time=timestamp(row["created_at"]),
    )


def role_to_proto(row: dict) -> member_pb2.Role:
    return member_pb2.Role(
        id=str(row["id"]), name=row["name"], description=row["description"] or "",
        permissions=list(row["permissions"]), system=row["system"],
        etag=rules.etag(row["version"]) if row.get("version") is not None else "",
    )


def _caller():
    ctx = context.current()
    return ctx.principal, ctx.tenant_id


class MembershipServicer(membership_service_pb2_grpc.MembershipServiceServicer):
    def __init__(self, deps: Deps, accounts: Accounts):
        self.deps = deps
        self.members = Members(deps, accounts)

    async def ListMembers(self, request: pb.ListMembersRequest, ctx) -> pb.ListMembersResponse:
        rows, token = await self.members.list_members(context.current().tenant_id, request.page_size,
                                                      request.page_token)
        return pb.ListMembersResponse(members=[member_to_proto(r) for r in rows], next_page_token=token)

    async def UpdateMember(self, request: pb.UpdateMemberRequest, ctx) -> pb.UpdateMemberResponse:
        principal, org = _caller()
        m = request.member
        overrides = (list(m.overrides.grant), list(m.overrides.deny)) if m.HasField("overrides") else None
        row = await self.members.update_member(principal, org, user_id=m.user_id, role=m.role, overrides=overrides,
                                               etag=m.etag)
        return pb.UpdateMemberResponse(member=member_to_proto(row))

    async def SuspendMember(self, request: pb.SuspendMemberRequest, ctx) -> pb.SuspendMemberResponse:
        principal, org = _caller()
        row = await self.members.suspend_member(principal, org, request.user_id)
        return pb.SuspendMemberResponse(member=member_to_proto(row))

    async def ReactivateMember(self, request: pb.ReactivateMemberRequest, ctx) -> pb.ReactivateMemberResponse:
        principal, org = _caller()
        row = await self.members.reactivate_member(principal, org, request.user_id)
        return pb.ReactivateMemberResponse(member=member_to_proto(row))

    async def RemoveMember(self, request: pb.RemoveMemberRequest, ctx) -> pb.RemoveMemberResponse:
        principal, org = _caller()
        await self.members.remove_member(principal, org, request.user_id)
        return pb.RemoveMemberResponse()

    async def CreateInvitation(self, request: pb.CreateInvitationRequest, ctx) -> pb.CreateInvitationResponse:
        principal, org = _caller()
        row = await self.members.create_invitation(principal, org, email=request.email, role=request.role,
                                                   request_id=request.request_id)
        return pb.CreateInvitationResponse(invitation=invitation_to_proto(row))

    async def ListInvitations(self, request: pb.ListInvitationsRequest, ctx) -> pb.ListInvitationsResponse:
        rows, token = await self.members.list_invitations(context.current().tenant_id, request.page_size,
                                                          request.page_token)
        return pb.ListInvitationsResponse(invitations=[invitation_to_proto(r) for r in rows], next_page_token=token)

    async def RevokeInvitation(self, request: pb.RevokeInvitationRequest, ctx) -> pb.RevokeInvitationResponse:
        row = await self.members.revoke_invitation(context.current().tenant_id, request.id)
        return pb.RevokeInvitationResponse(invitation=invitation_to_proto(row))

    async def AcceptInvitation(self, request: pb.AcceptInvitationRequest, ctx) -> pb.AcceptInvitationResponse:
        result = await self.members.accept_invitation(token=request.token, password=request.password,
                                                      first_name=request.first_name, last_name=request.last_name)
        if result.tokens is None:
            return pb.AcceptInvitationResponse()
        return pb.AcceptInvitationResponse(tokens=tokens_to_proto(result.tokens))

    async def ListRoles(self, request: pb.ListRolesRequest, ctx) -> pb.ListRolesResponse:
        rows = await self.members.list_roles(context.current().tenant_id)
        return pb.ListRolesResponse(roles=[role_to_proto(r) for r in rows])

    async def CreateRole(self, request: pb.CreateRoleRequest, ctx) -> pb.CreateRoleResponse:
        principal, org = _caller()
        r = request.role
        row = await self.members.create_role(principal, org, name=r.name, description=r.description,
                                             permissions=list(r.permissions), request_id=request.request_id)
        return pb.CreateRoleResponse(role=role_to_proto(row))

    async def UpdateRole(self, request: pb.UpdateRoleRequest, ctx) -> pb.UpdateRoleResponse:
        principal, org = _caller()
        r = request.role
        row = await self.members.update_role(principal, org, role_id=r.id, name=r.name, description=r.description,
                                             permissions=list(r.permissions), etag=r.etag)
        return pb.UpdateRoleResponse(role=role_to_proto(row))

    async def DeleteRole(self, request: pb.DeleteRoleRequest, ctx) -> pb.DeleteRoleResponse:
        await self.members.delete_role(context.current().tenant_id, request.id)
        return pb.DeleteRoleResponse()
