"""Members, invitations, roles, organizations: the rules, the permissions tokens carry, and
the immediate refusal (on identity and on crm) of a member's tokens when their rights change."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from urllib.parse import parse_qs, urlparse

import grpc
import jwt
import pytest
from givance.crm.v1 import donor_service_pb2 as dpb
from givance.crm.v1 import donor_service_pb2_grpc
from givance.events.v1 import audit_events_pb2, identity_events_pb2
from givance.identity.v1 import identity_service_pb2 as ipb
from givance.identity.v1 import member_pb2, membership_service_pb2_grpc, organization_pb2
from givance.identity.v1 import membership_service_pb2 as mpb
from givance.identity.v1 import organization_service_pb2 as opb
from google.protobuf import descriptor_pool, field_mask_pb2
from google.protobuf.json_format import MessageToDict

from chassis import events
from services.identity.domain import roles
from tests.conftest import PASSWORD, Tenant
from tests.helpers import comms_opens, error_reason, eventually, fails, field_violations, new_donor

# -- fixtures and helpers -----------------------------------------------------------------


@dataclass
class Api:
    members: membership_service_pb2_grpc.MembershipServiceStub
    crm_donors: donor_service_pb2_grpc.DonorServiceStub


@pytest.fixture
def api(stubs):
    return Api(members=stubs.members, crm_donors=stubs.donors)


def _email(prefix: str = "member") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.org"


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def _md(token: str, org_id: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"), ("x-tenant-id", org_id))


async def _outbox_events(admin_db, routing_key: str, aggregate_id: str, message_type):
    rows = await admin_db.fetch("SELECT body FROM identity.outbox WHERE routing_key = $1 AND aggregate_id = $2 "
                                "ORDER BY id", routing_key, aggregate_id)
    return [events.unpack(events.parse(bytes(r["body"])), message_type) for r in rows]


async def accept_token(admin_db, invitation_id: str) -> str:
    """The token of the accept link, from the identity.invitation.created event in the outbox."""
    [event] = await _outbox_events(admin_db, "identity.invitation.created", invitation_id,
                                   identity_events_pb2.InvitationCreatedEvent)
    assert not event.accept_link  # never in clear: sealed for comms
    link = comms_opens("identity.invitation.created", invitation_id, event.sealed_accept_link)
    assert link.startswith("http://127.0.0.1:8080/invitations/accept?token=")
    return parse_qs(urlparse(link).query)["token"][0]


async def invite(api: Api, owner: Tenant, role: str = "staff", email: str | None = None) -> member_pb2.Invitation:
    return (await api.members.CreateInvitation(mpb.CreateInvitationRequest(email=email or _email(), role=role),
                                               metadata=owner.md)).invitation


async def join(api: Api, admin_db, owner: Tenant, role: str = "staff", email: str | None = None) -> Tenant:
    """A new account invited into owner's organization, with its tokens there."""
    inv = await invite(api, owner, role, email)
    resp = await api.members.AcceptInvitation(mpb.AcceptInvitationRequest(
        token=await accept_token(admin_db, inv.id), password=PASSWORD, first_name="Mia", last_name="Member"))
    t = resp.tokens
    return Tenant(org_id=t.organization_id, user_id=t.user_id, email=inv.email, access_token=t.access_token,
                  refresh_token=t.refresh_token)


async def refreshed(stubs, member: Tenant) -> Tenant:
    t = (await stubs.identity.RefreshToken(ipb.RefreshTokenRequest(refresh_token=member.refresh_token))).tokens
    return Tenant(org_id=member.org_id, user_id=member.user_id, email=member.email, access_token=t.access_token,
                  refresh_token=t.refresh_token)


async def refused_on_crm(api: Api, member: Tenant) -> bool:
    try:
        await api.crm_donors.ListDonors(dpb.ListDonorsRequest(), metadata=member.md)
        return False
    except grpc.aio.AioRpcError as e:
        assert e.code() == grpc.StatusCode.UNAUTHENTICATED, e
        return True


async def _member(api: Api, owner: Tenant, user_id: str) -> member_pb2.Member | None:
    members = (await api.members.ListMembers(mpb.ListMembersRequest(page_size=1000), metadata=owner.md)).members
    return next((m for m in members if m.user_id == user_id), None)


async def _counts(admin_db) -> tuple:
    return tuple([await admin_db.fetchval(f"SELECT count(*) FROM identity.{t}") for t in
                  ("users", "user_organizations", "invitations", "roles", "revocations", "outbox")])


# -- invitations --------------------------------------------------------------------------


async def test_invitation_end_to_end_creates_the_account_and_membership(api, stubs, tenant, admin_db):
    email = _email("invitee")
    inv = await invite(api, tenant, "staff", email.upper())
    assert inv.email == email.lower() and inv.role == "staff" and inv.state == member_pb2.INVITATION_STATE_PENDING
    assert inv.invited_by == tenant.user_id
    # create_time is the transaction's start, expire_time seven days after the handler's clock read
    # inside it: a loaded machine puts seconds between the two.
    assert 6.9 * 86400 < inv.expire_time.seconds - inv.create_time.seconds <= 7 * 86400 + 60
    token = await accept_token(admin_db, inv.id)
    # only the token's hash is stored
    dump = await admin_db.fetchval("SELECT string_agg(i::text, '|') FROM identity.invitations i WHERE id = $1",
                                   uuid.UUID(inv.id))
    assert token.split(".", 1)[1] not in dump

    # a new account needs a password that passes the rules; nothing is written until it does
    before = await _counts(admin_db)
    e = await fails(api.members.AcceptInvitation(mpb.AcceptInvitationRequest(token=token)))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "password" in field_violations(e)
    e = await fails(api.members.AcceptInvitation(mpb.AcceptInvitationRequest(token=token, password="password1234")))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "password" in field_violations(e)
    assert await _counts(admin_db) == before

    resp = await api.members.AcceptInvitation(mpb.AcceptInvitationRequest(
        token=token, password=PASSWORD, first_name="Ada", last_name="Byron"))
    t = resp.tokens
    assert t.organization_id == tenant.org_id and t.role == "staff"
    claims = _claims(t.access_token)
    assert "identity.self" in claims["perms"] and "crm.donors.write" in claims["perms"]
    assert "identity.members.write" not in claims["perms"]
    member = Tenant(tenant.org_id, t.user_id, email, t.access_token, t.refresh_token)
    await api.crm_donors.CreateDonor(new_donor(), metadata=member.md)

    m = await _member(api, tenant, t.user_id)
    assert (m.email, m.first_name, m.role, m.state) == (email, "Ada", "staff", member_pb2.MEMBER_STATE_ACTIVE)
    assert await admin_db.fetchval("SELECT email_verified_at IS NOT NULL FROM identity.users WHERE id = $1",
                                   uuid.UUID(t.user_id))
    listed = (await api.members.ListInvitations(mpb.ListInvitationsRequest(), metadata=tenant.md)).invitations
    assert next(i for i in listed if i.id == inv.id).state == member_pb2.INVITATION_STATE_ACCEPTED
    # used once only
    e = await fails(api.members.AcceptInvitation(mpb.AcceptInvitationRequest(token=token, password=PASSWORD)))
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION and error_reason(e) == "INVITATION_ACCEPTED"
    # the new account logs in to the organization
    login = await stubs.identity.Login(ipb.LoginRequest(email=email, password=PASSWORD))
    assert login.tokens.organization_id == tenant.org_id and login.tokens.role == "staff"
    # audited
    [audit] = [a for a in await _outbox_events(admin_db, "identity.audit.recorded", inv.id,
                                               audit_events_pb2.AuditRecordedEvent)
               if a.action == "identity.invitation.create"]
    assert audit.actor_id == tenant.user_id and MessageToDict(audit.after)["email"] == email


async def test_an_existing_account_accepts_without_a_password(api, stubs, tenant, other_tenant, admin_db):
    inv = await invite(api, tenant, "viewer", other_tenant.email)
    # signed in to the account (tests/identity/test_reauth.py: the link alone is not enough)
    resp = await api.members.AcceptInvitation(mpb.AcceptInvitationRequest(token=await accept_token(admin_db, inv.id)),
                                              metadata=other_tenant.md)
    assert resp.tokens.user_id == other_tenant.user_id and resp.tokens.organization_id == tenant.org_id
    assert resp.tokens.role == "viewer"
    # both organizations are theirs now; the default stays
    mine = await stubs.organizations.ListMyOrganizations(opb.ListMyOrganizationsRequest(), metadata=other_tenant.md)
    assert {o.id for o in mine.organizations} == {tenant.org_id, other_tenant.org_id}
    assert mine.default_organization_id == other_tenant.org_id
    # inviting a member again is refused
    e = await fails(api.members.CreateInvitation(mpb.CreateInvitationRequest(email=other_tenant.email, role="staff"),
                                                metadata=tenant.md))
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION and error_reason(e) == "ALREADY_MEMBER"


async def test_expired_revoked_and_unknown_invitations(api, tenant, admin_db):
    expired = await invite(api, tenant)
    await admin_db.execute("UPDATE identity.invitations SET expires_at = now() - interval '1 minute' WHERE id = $1",
                           uuid.UUID(expired.id))
    e = await fails(api.members.AcceptInvitation(mpb.AcceptInvitationRequest(
        token=await accept_token(admin_db, expired.id), password=PASSWORD)))
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION and error_reason(e) == "INVITATION_EXPIRED"

    revoked = await invite(api, tenant)
    got = (await api.members.RevokeInvitation(mpb.RevokeInvitationRequest(id=revoked.id), metadata=tenant.md))
    assert got.invitation.state == member_pb2.INVITATION_STATE_REVOKED
    e = await fails(api.members.AcceptInvitation(mpb.AcceptInvitationRequest(
        token=await accept_token(admin_db, revoked.id), password=PASSWORD)))
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION and error_reason(e) == "INVITATION_REVOKED"

    listed = {i.id: i.state for i in (await api.members.ListInvitations(mpb.ListInvitationsRequest(),
                                                                         metadata=tenant.md)).invitations}
    assert listed[expired.id] == member_pb2.INVITATION_STATE_EXPIRED
    assert listed[revoked.id] == member_pb2.INVITATION_STATE_REVOKED

    # a new invitation to the same address replaces the pending one
    email = _email()
    first = await invite(api, tenant, email=email)
    second = await invite(api, tenant, email=email)
    e = await fails(api.members.AcceptInvitation(mpb.AcceptInvitationRequest(
        token=await accept_token(admin_db, first.id), password=PASSWORD)))
    assert error_reason(e) == "INVITATION_REVOKED"
    assert (await api.members.AcceptInvitation(mpb.AcceptInvitationRequest(
        token=await accept_token(admin_db, second.id), password=PASSWORD))).tokens.access_token

    for token in (f"{uuid.UUID(tenant.org_id).hex}.not-a-real-secret", f"{uuid.uuid4().hex}.x", "garbage", "a.b"):
        e = await fails(api.members.AcceptInvitation(mpb.AcceptInvitationRequest(token=token, password=PASSWORD)))
        assert e.code() == grpc.StatusCode.NOT_FOUND, token
    e = await fails(api.members.AcceptInvitation(mpb.AcceptInvitationRequest(token="")))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "token" in field_violations(e)


async def test_create_invitation_with_request_id_returns_the_first(api, tenant, admin_db):
    rid = uuid.uuid4().hex
    req = mpb.CreateInvitationRequest(email=_email(), role="viewer", request_id=rid)
    first = (await api.members.CreateInvitation(req, metadata=tenant.md)).invitation
    again = (await api.members.CreateInvitation(req, metadata=tenant.md)).invitation
    assert again.id == first.id and again.state == member_pb2.INVITATION_STATE_PENDING
    assert len(await _outbox_events(admin_db, "identity.invitation.created", first.id,
                                    identity_events_pb2.InvitationCreatedEvent)) == 1


# -- roles, overrides, and what tokens grant ------------------------------------------------


async def test_role_change_revokes_the_old_token_and_the_refreshed_one_has_the_new_rights(
        api, stubs, tenant, admin_db):
    member = await join(api, admin_db, tenant, "staff")
    await api.crm_donors.CreateDonor(new_donor(), metadata=member.md)
    before = await _member(api, tenant, member.user_id)
    updated = (await api.members.UpdateMember(mpb.UpdateMemberRequest(
        member=member_pb2.Member(user_id=member.user_id, role="viewer", etag=before.etag)), metadata=tenant.md)).member
    assert updated.role == "viewer" and updated.etag != before.etag
    # the old token: refused by identity at once, by crm as soon as the broadcast arrives
    e = await fails(stubs.organizations.GetOrganization(opb.GetOrganizationRequest(), metadata=member.md))
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED and error_reason(e) == "TOKEN_REVOKED"
    await eventually(lambda: refused_on_crm(api, member), what="crm refusing the member's old token")
    # a refreshed token carries the viewer's rights: reads work, writes do not
    viewer = await refreshed(stubs, member)
    assert _claims(viewer.access_token)["role"] == "viewer"
    await api.crm_donors.ListDonors(dpb.ListDonorsRequest(), metadata=viewer.md)
    e = await fails(api.crm_donors.CreateDonor(new_donor(), metadata=viewer.md))
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED
    # a stale etag is refused
    e = await fails(api.members.UpdateMember(mpb.UpdateMemberRequest(
        member=member_pb2.Member(user_id=member.user_id, role="staff", etag=before.etag)), metadata=tenant.md))
    assert e.code() == grpc.StatusCode.ABORTED
    # the change is audited with before and after
    audits = [a for a in await _outbox_events(admin_db, "identity.audit.recorded", member.user_id,
                                              audit_events_pb2.AuditRecordedEvent)
              if a.action == "identity.member.update"]
    assert MessageToDict(audits[-1].before)["role"] == "staff" and MessageToDict(audits[-1].after)["role"] == "viewer"
    [changed] = await _outbox_events(admin_db, "identity.membership.changed", f"{tenant.org_id}/{member.user_id}",
                                     identity_events_pb2.MembershipChangedEvent)
    assert changed.change == "role_changed" and changed.user_id == member.user_id


async def test_not_before_is_exact_below_a_second(api, stubs, tenant, admin_db):
    """A token issued just after a change within the same second as it works everywhere; one
    issued before it does not: iat carries sub-second precision."""
    member = await join(api, admin_db, tenant, "staff")
    for attempt in range(20):  # until the change and the new token share a second (nearly always at once)
        old = member
        await api.members.UpdateMember(mpb.UpdateMemberRequest(
            member=member_pb2.Member(user_id=member.user_id, role=("viewer", "staff")[attempt % 2])),
            metadata=tenant.md)
        member = await refreshed(stubs, member)
        not_before = await admin_db.fetchval(
            "SELECT extract(epoch FROM not_before)::float8 FROM identity.revocations "
            "WHERE kind = 'membership' AND tenant_id = $1 AND subject_id = $2", uuid.UUID(tenant.org_id),
            member.user_id)
        old_iat, new_iat = _claims(old.access_token)["iat"], _claims(member.access_token)["iat"]
        assert old_iat < not_before < new_iat
        if int(new_iat) == int(not_before):
            break
    else:
        pytest.fail("no token was issued in the same second as a change")
    e = await fails(stubs.organizations.GetOrganization(opb.GetOrganizationRequest(), metadata=old.md))
    assert error_reason(e) == "TOKEN_REVOKED"
    await stubs.organizations.GetOrganization(opb.GetOrganizationRequest(), metadata=member.md)
    await eventually(lambda: refused_on_crm(api, old), what="crm refusing the token from before the change")
    await api.crm_donors.ListDonors(dpb.ListDonorsRequest(), metadata=member.md)


async def test_custom_roles_and_overrides(api, stubs, tenant, admin_db):
    readers = (await api.members.CreateRole(mpb.CreateRoleRequest(role=member_pb2.Role(
        name="Donor readers", description="read donors", permissions=["identity.self", "crm.donors.read"])),
        metadata=tenant.md)).role
    assert not readers.system and readers.etag and uuid.UUID(readers.id)
    listed = (await api.members.ListRoles(mpb.ListRolesRequest(), metadata=tenant.md)).roles
    assert [r.id for r in listed if r.system] == ["owner", "admin", "staff", "viewer"]
    assert readers.id in [r.id for r in listed]
    assert all(roles.holds(r.permissions, "identity.self") for r in listed if r.system)
    e = await fails(api.members.CreateRole(mpb.CreateRoleRequest(role=member_pb2.Role(
        name="donor READERS", permissions=["crm.donors.read"])), metadata=tenant.md))
    assert e.code() == grpc.StatusCode.ALREADY_EXISTS

    member = await join(api, admin_db, tenant, readers.id)
    assert member.access_token and _claims(member.access_token)["role"] == readers.id
    assert sorted(_claims(member.access_token)["perms"]) == ["crm.donors.read", "identity.self"]
    await api.crm_donors.ListDonors(dpb.ListDonorsRequest(), metadata=member.md)
    e = await fails(api.crm_donors.CreateDonor(new_donor(), metadata=member.md))
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED

    # an override grants writing
    await api.members.UpdateMember(mpb.UpdateMemberRequest(member=member_pb2.Member(
        user_id=member.user_id, overrides=member_pb2.PermissionOverrides(grant=["crm.donors.write"]))),
        metadata=tenant.md)
    member = await refreshed(stubs, member)
    await api.crm_donors.CreateDonor(new_donor(), metadata=member.md)
    got = await _member(api, tenant, member.user_id)
    assert got.role == readers.id and list(got.overrides.grant) == ["crm.donors.write"]

    # the role changes: every holder's tokens stop working, the refreshed ones carry the new set
    role = (await api.members.UpdateRole(mpb.UpdateRoleRequest(role=member_pb2.Role(
        id=readers.id, name="Donor readers", permissions=["identity.self", "crm.*"], etag=readers.etag)),
        metadata=tenant.md)).role
    assert role.etag != readers.etag
    e = await fails(stubs.organizations.GetOrganization(opb.GetOrganizationRequest(), metadata=member.md))
    assert error_reason(e) == "TOKEN_REVOKED"
    await eventually(lambda: refused_on_crm(api, member), what="crm refusing the holder's token")
    member = await refreshed(stubs, member)
    assert "crm.*" in _claims(member.access_token)["perms"]
    e = await fails(api.members.UpdateRole(mpb.UpdateRoleRequest(role=member_pb2.Role(
        id=readers.id, name="x", permissions=["crm.donors.read"], etag=readers.etag)), metadata=tenant.md))
    assert e.code() == grpc.StatusCode.ABORTED

    # a denial wins, even over a wildcard of the role
    await api.members.UpdateMember(mpb.UpdateMemberRequest(member=member_pb2.Member(
        user_id=member.user_id, overrides=member_pb2.PermissionOverrides(deny=["crm.donors.read"]))),
        metadata=tenant.md)
    member = await refreshed(stubs, member)
    perms = _claims(member.access_token)["perms"]
    assert "crm.*" not in perms and "crm.donors.write" in perms and "crm.donors.read" not in perms
    e = await fails(api.crm_donors.ListDonors(dpb.ListDonorsRequest(), metadata=member.md))
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED

    # a role held by a member cannot be deleted; once nobody holds it, it can
    e = await fails(api.members.DeleteRole(mpb.DeleteRoleRequest(id=readers.id), metadata=tenant.md))
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION and error_reason(e) == "ROLE_IN_USE"
    await api.members.UpdateMember(mpb.UpdateMemberRequest(member=member_pb2.Member(
        user_id=member.user_id, role="viewer")), metadata=tenant.md)
    await api.members.DeleteRole(mpb.DeleteRoleRequest(id=readers.id), metadata=tenant.md)
    listed = (await api.members.ListRoles(mpb.ListRolesRequest(), metadata=tenant.md)).roles
    assert readers.id not in [r.id for r in listed]
    # system roles are read-only
    for call in (api.members.DeleteRole(mpb.DeleteRoleRequest(id="admin"), metadata=tenant.md),
                 api.members.UpdateRole(mpb.UpdateRoleRequest(role=member_pb2.Role(
                     id="viewer", name="viewer", permissions=["crm.*"])), metadata=tenant.md)):
        e = await fails(call)
        assert e.code() == grpc.StatusCode.FAILED_PRECONDITION and error_reason(e) == "SYSTEM_ROLE"


async def test_nobody_grants_more_than_they_hold(api, stubs, tenant, admin_db):
    admin = await join(api, admin_db, tenant, "admin")
    for call in (
        api.members.CreateRole(mpb.CreateRoleRequest(role=member_pb2.Role(name="God", permissions=["*"])),
                               metadata=admin.md),
        api.members.UpdateMember(mpb.UpdateMemberRequest(member=member_pb2.Member(
            user_id=admin.user_id, overrides=member_pb2.PermissionOverrides(grant=["*"]))), metadata=admin.md),
    ):
        e = await fails(call)
        assert e.code() == grpc.StatusCode.PERMISSION_DENIED and error_reason(e) == "PERMISSION_ESCALATION"
    # ownership: only an owner grants it or takes it away
    staff = await join(api, admin_db, tenant, "staff")
    for call in (
        api.members.UpdateMember(mpb.UpdateMemberRequest(member=member_pb2.Member(user_id=staff.user_id,
                                                                                   role="owner")), metadata=admin.md),
        api.members.CreateInvitation(mpb.CreateInvitationRequest(email=_email(), role="owner"), metadata=admin.md),
        api.members.SuspendMember(mpb.SuspendMemberRequest(user_id=tenant.user_id), metadata=admin.md),
        api.members.RemoveMember(mpb.RemoveMemberRequest(user_id=tenant.user_id), metadata=admin.md),
    ):
        e = await fails(call)
        assert e.code() == grpc.StatusCode.PERMISSION_DENIED and error_reason(e) == "OWNER_REQUIRED"
    # an admin manages other members
    await api.members.UpdateMember(mpb.UpdateMemberRequest(member=member_pb2.Member(user_id=staff.user_id,
                                                                                    role="viewer")), metadata=admin.md)
    # a staff member cannot manage members at all
    staff = await refreshed(stubs, staff)
    e = await fails(api.members.SuspendMember(mpb.SuspendMemberRequest(user_id=admin.user_id), metadata=staff.md))
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_the_last_owner_stays(api, stubs, tenant, admin_db):
    for call in (
        api.members.SuspendMember(mpb.SuspendMemberRequest(user_id=tenant.user_id), metadata=tenant.md),
        api.members.RemoveMember(mpb.RemoveMemberRequest(user_id=tenant.user_id), metadata=tenant.md),
        api.members.UpdateMember(mpb.UpdateMemberRequest(member=member_pb2.Member(user_id=tenant.user_id,
                                                                                   role="admin")), metadata=tenant.md),
    ):
        e = await fails(call)
        assert e.code() == grpc.StatusCode.FAILED_PRECONDITION and error_reason(e) == "LAST_OWNER"
    assert (await _member(api, tenant, tenant.user_id)).role == "owner"
    # with a second owner, the first may step down
    second = await join(api, admin_db, tenant, "owner")
    await api.members.UpdateMember(mpb.UpdateMemberRequest(member=member_pb2.Member(user_id=tenant.user_id,
                                                                                    role="admin")), metadata=tenant.md)
    # now the second owner is the last one
    e = await fails(api.members.RemoveMember(mpb.RemoveMemberRequest(user_id=second.user_id), metadata=second.md))
    assert error_reason(e) == "LAST_OWNER"


# -- suspension and removal ---------------------------------------------------------------


async def test_a_suspended_members_tokens_are_refused_at_once_everywhere(api, stubs, tenant, admin_db):
    member = await join(api, admin_db, tenant, "staff")
    await api.crm_donors.ListDonors(dpb.ListDonorsRequest(), metadata=member.md)
    await stubs.organizations.GetOrganization(opb.GetOrganizationRequest(), metadata=member.md)
    suspended = (await api.members.SuspendMember(mpb.SuspendMemberRequest(user_id=member.user_id),
                                                 metadata=tenant.md)).member
    assert suspended.state == member_pb2.MEMBER_STATE_SUSPENDED
    e = await fails(stubs.organizations.GetOrganization(opb.GetOrganizationRequest(), metadata=member.md))
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED
    await eventually(lambda: refused_on_crm(api, member), what="crm refusing the suspended member's token")
    # no new tokens: not by refresh, not by login
    e = await fails(stubs.identity.RefreshToken(ipb.RefreshTokenRequest(refresh_token=member.refresh_token)))
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED
    e = await fails(stubs.identity.Login(ipb.LoginRequest(email=member.email, password=PASSWORD)))
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED
    [changed] = await _outbox_events(admin_db, "identity.membership.changed", f"{tenant.org_id}/{member.user_id}",
                                     identity_events_pb2.MembershipChangedEvent)
    assert changed.change == "suspended" and changed.not_before.seconds > 0

    reactivated = (await api.members.ReactivateMember(mpb.ReactivateMemberRequest(user_id=member.user_id),
                                                      metadata=tenant.md)).member
    assert reactivated.state == member_pb2.MEMBER_STATE_ACTIVE
    login = await stubs.identity.Login(ipb.LoginRequest(email=member.email, password=PASSWORD))
    back = Tenant(tenant.org_id, member.user_id, member.email, login.tokens.access_token, login.tokens.refresh_token)
    await stubs.organizations.GetOrganization(opb.GetOrganizationRequest(), metadata=back.md)
    # crm has the suspension (above); a token issued after it works there at once
    await api.crm_donors.ListDonors(dpb.ListDonorsRequest(), metadata=back.md)


async def test_a_removed_members_tokens_are_refused_at_once_everywhere(api, stubs, tenant, admin_db):
    member = await join(api, admin_db, tenant, "staff")
    await api.crm_donors.ListDonors(dpb.ListDonorsRequest(), metadata=member.md)
    await api.members.RemoveMember(mpb.RemoveMemberRequest(user_id=member.user_id), metadata=tenant.md)
    e = await fails(stubs.organizations.GetOrganization(opb.GetOrganizationRequest(), metadata=member.md))
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED
    await eventually(lambda: refused_on_crm(api, member), what="crm refusing the removed member's token")
    assert await _member(api, tenant, member.user_id) is None
    e = await fails(stubs.identity.RefreshToken(ipb.RefreshTokenRequest(refresh_token=member.refresh_token)))
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED
    e = await fails(stubs.identity.Login(ipb.LoginRequest(email=member.email, password=PASSWORD,
                                                         organization_id=tenant.org_id)))
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED
    e = await fails(api.members.RemoveMember(mpb.RemoveMemberRequest(user_id=member.user_id), metadata=tenant.md))
    assert e.code() == grpc.StatusCode.NOT_FOUND
    audits = [a for a in await _outbox_events(admin_db, "identity.audit.recorded", member.user_id,
                                              audit_events_pb2.AuditRecordedEvent)
              if a.action == "identity.member.remove"]
    assert MessageToDict(audits[0].before)["role"] == "staff"


async def test_list_members_pages(api, tenant, admin_db):
    for _ in range(3):
        await join(api, admin_db, tenant, "viewer")
    seen, token, pages = [], "", 0
    while True:
        resp = await api.members.ListMembers(mpb.ListMembersRequest(page_size=2, page_token=token),
                                             metadata=tenant.md)
        seen += [m.user_id for m in resp.members]
        pages += 1
        token = resp.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)) == 4 and pages == 2 and seen[0] == tenant.user_id


# -- organizations --------------------------------------------------------------------------


async def test_update_organization(api, stubs, tenant, other_tenant, admin_db):
    org = (await stubs.organizations.GetOrganization(opb.GetOrganizationRequest(), metadata=tenant.md)).organization
    assert org.etag and org.domain == "" and not org.mfa_required
    domain = f"give-{uuid.uuid4().hex[:6]}.Example.ORG."
    slug = f"renamed-{uuid.uuid4().hex[:6]}"
    updated = (await stubs.organizations.UpdateOrganization(opb.UpdateOrganizationRequest(
        organization=organization_pb2.Organization(name="  Renamed Fund ", slug=slug, domain=domain,
                                                   mfa_required=True, etag=org.etag),
        update_mask=field_mask_pb2.FieldMask(paths=["name", "slug", "domain"])), metadata=tenant.md)).organization
    assert (updated.name, updated.slug, updated.domain) == ("Renamed Fund", slug, domain.lower().rstrip("."))
    assert not updated.mfa_required and updated.etag != org.etag  # not in the mask: unchanged
    got = (await stubs.organizations.GetOrganization(opb.GetOrganizationRequest(), metadata=tenant.md)).organization
    assert got == updated
    # stale etag
    e = await fails(stubs.organizations.UpdateOrganization(opb.UpdateOrganizationRequest(
        organization=organization_pb2.Organization(name="x", etag=org.etag),
        update_mask=field_mask_pb2.FieldMask(paths=["name"])), metadata=tenant.md))
    assert e.code() == grpc.StatusCode.ABORTED
    # slug and domain are unique across organizations
    for field, value, reason in (("slug", slug, "SLUG_TAKEN"), ("domain", domain.upper(), "DOMAIN_TAKEN")):
        e = await fails(stubs.organizations.UpdateOrganization(opb.UpdateOrganizationRequest(
            organization=organization_pb2.Organization(**{field: value}),
            update_mask=field_mask_pb2.FieldMask(paths=[field])), metadata=other_tenant.md))
        assert e.code() == grpc.StatusCode.ALREADY_EXISTS and error_reason(e) == reason
    # another organization's id: not found
    e = await fails(stubs.organizations.UpdateOrganization(opb.UpdateOrganizationRequest(
        organization=organization_pb2.Organization(id=other_tenant.org_id, name="Mine now"),
        update_mask=field_mask_pb2.FieldMask(paths=["name"])), metadata=tenant.md))
    assert e.code() == grpc.StatusCode.NOT_FOUND
    # the MFA policy, and clearing the domain
    cleared = (await stubs.organizations.UpdateOrganization(opb.UpdateOrganizationRequest(
        organization=organization_pb2.Organization(domain="", mfa_required=True),
        update_mask=field_mask_pb2.FieldMask(paths=["domain", "mfa_required"])), metadata=tenant.md)).organization
    assert cleared.domain == "" and cleared.mfa_required
    audits = [a for a in await _outbox_events(admin_db, "identity.audit.recorded", tenant.org_id,
                                              audit_events_pb2.AuditRecordedEvent)
              if a.action == "identity.organization.update"]
    assert MessageToDict(audits[0].before)["name"] == org.name and MessageToDict(audits[0].after)["slug"] == slug
    # a viewer may read, not update
    viewer = await join(api, admin_db, other_tenant, "viewer")
    await stubs.organizations.GetOrganization(opb.GetOrganizationRequest(), metadata=viewer.md)
    e = await fails(stubs.organizations.UpdateOrganization(opb.UpdateOrganizationRequest(
        organization=organization_pb2.Organization(name="x"), update_mask=field_mask_pb2.FieldMask(paths=["name"])),
        metadata=viewer.md))
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_switch_organization(api, stubs, tenant, other_tenant, admin_db):
    inv = await invite(api, tenant, "staff", other_tenant.email)
    await api.members.AcceptInvitation(mpb.AcceptInvitationRequest(token=await accept_token(admin_db, inv.id)),
                                       metadata=other_tenant.md)
    # other_tenant's user, signed in to their own organization, switches to tenant's
    resp = await stubs.identity.SwitchOrganization(ipb.SwitchOrganizationRequest(organization_id=tenant.org_id),
                                                   metadata=other_tenant.md)
    t = resp.tokens
    assert (t.organization_id, t.user_id, t.role) == (tenant.org_id, other_tenant.user_id, "staff")
    org = (await stubs.organizations.GetOrganization(opb.GetOrganizationRequest(),
                                                     metadata=_md(t.access_token, tenant.org_id))).organization
    assert org.id == tenant.org_id
    await api.crm_donors.CreateDonor(new_donor(), metadata=_md(t.access_token, tenant.org_id))
    # the refresh token is for that organization
    again = await stubs.identity.RefreshToken(ipb.RefreshTokenRequest(refresh_token=t.refresh_token))
    assert again.tokens.organization_id == tenant.org_id
    # make_default
    await stubs.identity.SwitchOrganization(ipb.SwitchOrganizationRequest(organization_id=tenant.org_id,
                                                                          make_default=True), metadata=other_tenant.md)
    login = await stubs.identity.Login(ipb.LoginRequest(email=other_tenant.email, password=PASSWORD))
    assert login.tokens.organization_id == tenant.org_id
    # not a member, or no such organization: one answer, which confirms nothing
    stranger = await stubs.sign_up("Stranger Org")
    errors = [await fails(stubs.identity.SwitchOrganization(ipb.SwitchOrganizationRequest(organization_id=org_id),
                                                           metadata=tenant.md))
              for org_id in (stranger.org_id, str(uuid.uuid4()))]
    assert {e.code() for e in errors} == {grpc.StatusCode.PERMISSION_DENIED}
    assert len({e.details() for e in errors}) == 1
    for bad in ("", "nope"):
        e = await fails(stubs.identity.SwitchOrganization(ipb.SwitchOrganizationRequest(organization_id=bad),
                                                         metadata=tenant.md))
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "organization_id" in field_violations(e)
    # a suspended membership cannot be switched to
    await api.members.SuspendMember(mpb.SuspendMemberRequest(user_id=other_tenant.user_id), metadata=tenant.md)
    e = await fails(stubs.identity.SwitchOrganization(ipb.SwitchOrganizationRequest(organization_id=tenant.org_id),
                                                     metadata=other_tenant.md))
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED
    mine = await stubs.organizations.ListMyOrganizations(opb.ListMyOrganizationsRequest(), metadata=other_tenant.md)
    assert [o.id for o in mine.organizations] == [other_tenant.org_id]
    assert mine.default_organization_id == tenant.org_id
    # removed from their default organization: the next login without one lands in another of theirs
    await api.members.RemoveMember(mpb.RemoveMemberRequest(user_id=other_tenant.user_id), metadata=tenant.md)
    login = await stubs.identity.Login(ipb.LoginRequest(email=other_tenant.email, password=PASSWORD))
    assert login.tokens.organization_id == other_tenant.org_id


# -- tenancy ------------------------------------------------------------------------------


async def test_another_organizations_ids_are_not_found(api, tenant, other_tenant, admin_db):
    theirs = await join(api, admin_db, other_tenant, "staff")
    their_inv = await invite(api, other_tenant)
    their_role = (await api.members.CreateRole(mpb.CreateRoleRequest(role=member_pb2.Role(
        name="Theirs", permissions=["crm.donors.read"])), metadata=other_tenant.md)).role
    mine = await join(api, admin_db, tenant, "staff")
    calls = [
        api.members.UpdateMember(mpb.UpdateMemberRequest(member=member_pb2.Member(user_id=theirs.user_id,
                                                                                   role="viewer")), metadata=tenant.md),
        api.members.SuspendMember(mpb.SuspendMemberRequest(user_id=theirs.user_id), metadata=tenant.md),
        api.members.ReactivateMember(mpb.ReactivateMemberRequest(user_id=theirs.user_id), metadata=tenant.md),
        api.members.RemoveMember(mpb.RemoveMemberRequest(user_id=theirs.user_id), metadata=tenant.md),
        api.members.RevokeInvitation(mpb.RevokeInvitationRequest(id=their_inv.id), metadata=tenant.md),
        api.members.UpdateRole(mpb.UpdateRoleRequest(role=member_pb2.Role(
            id=their_role.id, name="Mine", permissions=["crm.donors.read"])), metadata=tenant.md),
        api.members.DeleteRole(mpb.DeleteRoleRequest(id=their_role.id), metadata=tenant.md),
        # their role given to my member, or offered in my invitation
        api.members.UpdateMember(mpb.UpdateMemberRequest(member=member_pb2.Member(user_id=mine.user_id,
                                                                                   role=their_role.id)),
                                 metadata=tenant.md),
        api.members.CreateInvitation(mpb.CreateInvitationRequest(email=_email(), role=their_role.id),
                                     metadata=tenant.md),
    ]
    for call in calls:
        e = await fails(call)
        assert e.code() == grpc.StatusCode.NOT_FOUND, e.details()
    # and nothing of theirs shows in my lists
    members = (await api.members.ListMembers(mpb.ListMembersRequest(), metadata=tenant.md)).members
    assert theirs.user_id not in {m.user_id for m in members}
    invitations = (await api.members.ListInvitations(mpb.ListInvitationsRequest(), metadata=tenant.md)).invitations
    assert their_inv.id not in {i.id for i in invitations}
    assert their_role.id not in {r.id for r in (await api.members.ListRoles(mpb.ListRolesRequest(),
                                                                              metadata=tenant.md)).roles}
    got = await _member(api, other_tenant, theirs.user_id)
    assert got.state == member_pb2.MEMBER_STATE_ACTIVE and got.role == "staff"


# -- bad input ----------------------------------------------------------------------------


def _bad_requests(api: Api, stubs, member_id: str) -> list[tuple]:
    """(stub method, request, the field the error must name)."""
    m, o = api.members, stubs.organizations
    mask = field_mask_pb2.FieldMask
    return [
        (m.ListMembers, mpb.ListMembersRequest(page_size=-1), "page_size"),
        (m.ListMembers, mpb.ListMembersRequest(page_token="bogus"), "page_token"),
        (m.UpdateMember, mpb.UpdateMemberRequest(member=member_pb2.Member(user_id="x", role="viewer")),
         "member.user_id"),
        (m.UpdateMember, mpb.UpdateMemberRequest(member=member_pb2.Member(role="viewer")), "member.user_id"),
        (m.UpdateMember, mpb.UpdateMemberRequest(member=member_pb2.Member(user_id=member_id, role="boss")),
         "member.role"),
        (m.UpdateMember, mpb.UpdateMemberRequest(member=member_pb2.Member(
            user_id=member_id, overrides=member_pb2.PermissionOverrides(grant=["crm.donors.read", "fly.away"]))),
         "member.overrides.grant[1]"),
        (m.UpdateMember, mpb.UpdateMemberRequest(member=member_pb2.Member(
            user_id=member_id, overrides=member_pb2.PermissionOverrides(deny=["crm.*", ""]))),
         "member.overrides.deny[1]"),
        (m.SuspendMember, mpb.SuspendMemberRequest(user_id=""), "user_id"),
        (m.ReactivateMember, mpb.ReactivateMemberRequest(user_id="12"), "user_id"),
        (m.RemoveMember, mpb.RemoveMemberRequest(user_id="nope"), "user_id"),
        (m.CreateInvitation, mpb.CreateInvitationRequest(email="not-an-email", role="staff"), "email"),
        (m.CreateInvitation, mpb.CreateInvitationRequest(email="", role="staff"), "email"),
        (m.CreateInvitation, mpb.CreateInvitationRequest(email=_email(), role=""), "role"),
        (m.CreateInvitation, mpb.CreateInvitationRequest(email=_email(), role="superuser"), "role"),
        (m.CreateInvitation, mpb.CreateInvitationRequest(email=_email(), role="staff", request_id="r" * 101),
         "request_id"),
        (m.ListInvitations, mpb.ListInvitationsRequest(page_size=-5), "page_size"),
        (m.ListInvitations, mpb.ListInvitationsRequest(page_token="!!"), "page_token"),
        (m.RevokeInvitation, mpb.RevokeInvitationRequest(id=""), "id"),
        (m.RevokeInvitation, mpb.RevokeInvitationRequest(id="zz"), "id"),
        (m.CreateRole, mpb.CreateRoleRequest(role=member_pb2.Role(name="", permissions=["crm.donors.read"])),
         "role.name"),
        (m.CreateRole, mpb.CreateRoleRequest(role=member_pb2.Role(name="Admin", permissions=["crm.donors.read"])),
         "role.name"),
        (m.CreateRole, mpb.CreateRoleRequest(role=member_pb2.Role(name="n" * 101, permissions=["crm.donors.read"])),
         "role.name"),
        (m.CreateRole, mpb.CreateRoleRequest(role=member_pb2.Role(name="Readers", permissions=[])),
         "role.permissions"),
        (m.CreateRole, mpb.CreateRoleRequest(role=member_pb2.Role(
            name="Readers", permissions=["crm.donors.read", "crm.donors.fly"])), "role.permissions[1]"),
        (m.CreateRole, mpb.CreateRoleRequest(role=member_pb2.Role(name="Readers", permissions=["nothing.*"])),
         "role.permissions[0]"),
        (m.CreateRole, mpb.CreateRoleRequest(role=member_pb2.Role(
            name="Readers", description="d" * 1001, permissions=["crm.donors.read"])), "role.description"),
        (m.UpdateRole, mpb.UpdateRoleRequest(role=member_pb2.Role(id="x", name="R", permissions=["crm.*"])),
         "role.id"),
        (m.UpdateRole, mpb.UpdateRoleRequest(role=member_pb2.Role(id=str(uuid.uuid4()), name="R",
                                                                 permissions=["crm.nope"])), "role.permissions[0]"),
        (m.DeleteRole, mpb.DeleteRoleRequest(id=""), "id"),
        (m.DeleteRole, mpb.DeleteRoleRequest(id="not-a-role"), "id"),
        (o.UpdateOrganization, opb.UpdateOrganizationRequest(
            organization=organization_pb2.Organization(domain="not a host"), update_mask=mask(paths=["domain"])),
         "organization.domain"),
        (o.UpdateOrganization, opb.UpdateOrganizationRequest(
            organization=organization_pb2.Organization(domain="localhost"), update_mask=mask(paths=["domain"])),
         "organization.domain"),
        (o.UpdateOrganization, opb.UpdateOrganizationRequest(
            organization=organization_pb2.Organization(domain="-bad-.example.org"),
            update_mask=mask(paths=["domain"])), "organization.domain"),
        (o.UpdateOrganization, opb.UpdateOrganizationRequest(
            organization=organization_pb2.Organization(name=" "), update_mask=mask(paths=["name"])),
         "organization.name"),
        (o.UpdateOrganization, opb.UpdateOrganizationRequest(
            organization=organization_pb2.Organization(slug="Bad Slug"), update_mask=mask(paths=["slug"])),
         "organization.slug"),
        (o.UpdateOrganization, opb.UpdateOrganizationRequest(
            organization=organization_pb2.Organization(name="x"), update_mask=mask(paths=["created_at"])),
         "update_mask"),
        (o.UpdateOrganization, opb.UpdateOrganizationRequest(
            organization=organization_pb2.Organization(id="x", name="y"), update_mask=mask(paths=["name"])),
         "organization.id"),
        (o.GetOrganization, opb.GetOrganizationRequest(id="x"), "id"),
    ]


async def test_bad_input_names_the_field_and_writes_nothing(api, stubs, tenant, admin_db):
    member = await join(api, admin_db, tenant, "staff")
    before = await _counts(admin_db)
    org_before = await admin_db.fetchrow("SELECT * FROM identity.organizations WHERE id = $1",
                                         uuid.UUID(tenant.org_id))
    for method, request, field in _bad_requests(api, stubs, member.user_id):
        e = await fails(method(request, metadata=tenant.md))
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (field, e.details())
        assert field in field_violations(e), (field, field_violations(e))
    assert await _counts(admin_db) == before
    assert await admin_db.fetchrow("SELECT * FROM identity.organizations WHERE id = $1",
                                   uuid.UUID(tenant.org_id)) == org_before
    assert (await _member(api, tenant, member.user_id)).role == "staff"
    # AcceptInvitation (public) too
    e = await fails(api.members.AcceptInvitation(mpb.AcceptInvitationRequest(token="x", first_name="f" * 101)))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "first_name" in field_violations(e)


# -- the permission catalogue ---------------------------------------------------------------


def test_the_catalogue_holds_every_permission_the_protos_declare():
    """Every service's protos (each givance/<service>/v1/*_service.proto), not a list to keep."""
    import importlib
    from pathlib import Path

    from givance.options.v1 import auth_pb2

    root = Path(__file__).resolve().parents[2] / "protos"
    pool = descriptor_pool.Default()
    declared = set()
    for path in sorted(root.glob("givance/*/v1/*_service.proto")):
        file_name = path.relative_to(root).as_posix()
        importlib.import_module(file_name.removesuffix(".proto").replace("/", ".") + "_pb2")
        for service in pool.FindFileByName(file_name).services_by_name.values():
            for method in service.methods:
                rule = method.GetOptions().Extensions[auth_pb2.auth]
                if rule.permission:
                    declared.add(rule.permission)
    assert declared | set(roles.CHECKED_BY_SERVICES) == set(roles.CATALOGUE) | set(roles.PLATFORM_PERMISSIONS)
    for role, perms in roles.SYSTEM_ROLES.items():
        assert roles.holds(perms, roles.SELF), role
    assert roles.holds(roles.SYSTEM_ROLES["viewer"], "crm.donors.read")
    assert not roles.holds(roles.SYSTEM_ROLES["viewer"], "crm.donors.write")
    assert not roles.holds(roles.SYSTEM_ROLES["staff"], "identity.members.write")


def test_a_denial_wins_over_any_grant():
    eff = roles.effective_permissions(("*",), (), ("crm.donors.delete",))
    assert "*" not in eff and "crm.donors.write" in eff and "crm.donors.delete" not in eff
    assert roles.effective_permissions(("crm.*",), ("identity.audit.read",), ("crm.*",)) == (
        "identity.audit.read", "identity.self")


def test_every_member_keeps_identity_self_whatever_the_role_or_denials():
    assert "identity.self" in roles.effective_permissions((), (), ())
    assert "identity.self" in roles.effective_permissions(("crm.donors.read",), (), ("identity.self",))
    assert roles.effective_permissions(("*",), (), ()) == ("*",)  # already covered: not added twice
    assert roles.effective_permissions(("crm.donors.read",), ("crm.donors.read",), ()) == (
        "crm.donors.read", "identity.self")
    eff = roles.effective_permissions(("identity.*", "comms.*"), (), ("identity.members.*",))
    assert "comms.*" in eff and "identity.self" in eff and "identity.members.read" not in eff
    # platform permissions (signing keys, KYC review) are no role's, not even through "*"
    assert not any(p.startswith("platform.") for p in roles.effective_permissions(("*",), (), ("identity.*",)))
    assert not roles.holds(roles.SYSTEM_ROLES["owner"], "platform.signing_keys.rotate")
