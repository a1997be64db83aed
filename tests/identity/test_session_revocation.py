"""Ending a session ends access (issue 9, item 1): a stolen access token stops working on
identity and crm within seconds of Logout, RevokeSession, ResetPassword, ChangePassword or a
refresh token's reuse, and cannot mint new tokens through SwitchOrganization."""

from __future__ import annotations

import uuid

import grpc
from givance.crm.v1 import donor_service_pb2 as dpb
from givance.identity.v1 import account_service_pb2 as apb
from givance.identity.v1 import identity_service_pb2 as pb
from givance.identity.v1 import organization_service_pb2 as opb
from givance.identity.v1 import revocation_service_pb2 as rpb
from givance.identity.v1 import session_service_pb2 as spb
from givance.identity.v1 import user_pb2

from tests.conftest import PASSWORD, Tenant
from tests.helpers import error_reason, eventually, fails

NEW_PASSWORD = "violet kettle under the stairs"


def _md(token: str, org_id: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"), ("x-tenant-id", org_id))


async def _login(stubs, tenant: Tenant, password: str = PASSWORD) -> user_pb2.TokenPair:
    resp = await stubs.identity.Login(pb.LoginRequest(email=tenant.email, password=password,
                                                      organization_id=tenant.org_id))
    return resp.tokens


async def _refused_everywhere(stubs, token: str, org_id: str, reason: str = "SESSION_REVOKED") -> None:
    """identity refuses the token at once (it applies the revocation when it commits), crm as soon
    as the broadcast arrives."""
    md = _md(token, org_id)
    e = await fails(stubs.organizations.GetOrganization(opb.GetOrganizationRequest(), metadata=md))
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED and error_reason(e) == reason

    async def crm_refuses() -> bool:
        try:
            await stubs.donors.ListDonors(dpb.ListDonorsRequest(), metadata=md)
            return False
        except grpc.aio.AioRpcError as err:
            assert err.code() == grpc.StatusCode.UNAUTHENTICATED and error_reason(err) == reason, err
            return True

    await eventually(crm_refuses, what="crm refusing the ended session's access token")


async def _cannot_switch(stubs, token: str, org_id: str, target: str, reason: str = "SESSION_REVOKED") -> None:
    e = await fails(stubs.identity.SwitchOrganization(pb.SwitchOrganizationRequest(organization_id=target),
                                                      metadata=_md(token, org_id)))
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED and error_reason(e) == reason


async def _second_organization(admin_db, tenant: Tenant, other: Tenant) -> str:
    """Makes tenant's user a member of other's organization too (switching needs one)."""
    await admin_db.execute(
        "INSERT INTO identity.user_organizations (user_id, organization_id, role, status, joined_at) "
        "VALUES ($1, $2, 'staff', 'active', now())", uuid.UUID(tenant.user_id), uuid.UUID(other.org_id))
    return other.org_id


async def _works(stubs, token: str, org_id: str) -> None:
    md = _md(token, org_id)
    await stubs.organizations.GetOrganization(opb.GetOrganizationRequest(), metadata=md)
    await stubs.donors.ListDonors(dpb.ListDonorsRequest(), metadata=md)


async def test_logout_ends_the_sessions_access_tokens_everywhere(stubs, tenant, other_tenant, admin_db):
    target = await _second_organization(admin_db, tenant, other_tenant)
    stolen = await _login(stubs, tenant)
    await _works(stubs, stolen.access_token, tenant.org_id)
    await stubs.identity.Logout(pb.LogoutRequest(), metadata=_md(stolen.access_token, tenant.org_id))
    await _refused_everywhere(stubs, stolen.access_token, tenant.org_id)
    await _cannot_switch(stubs, stolen.access_token, tenant.org_id, target)
    # the user's other session is untouched
    await _works(stubs, tenant.access_token, tenant.org_id)
    await stubs.identity.SwitchOrganization(pb.SwitchOrganizationRequest(organization_id=target),
                                            metadata=tenant.md)


async def test_revoke_session_ends_that_sessions_access_tokens_everywhere(stubs, tenant, other_tenant, admin_db):
    target = await _second_organization(admin_db, tenant, other_tenant)
    stolen = await _login(stubs, tenant)
    sid = next(s.id for s in (await stubs.sessions.ListSessions(spb.ListSessionsRequest(), metadata=tenant.md)).sessions
               if not s.current)
    await stubs.sessions.RevokeSession(spb.RevokeSessionRequest(id=sid), metadata=tenant.md)
    await _refused_everywhere(stubs, stolen.access_token, tenant.org_id)
    await _cannot_switch(stubs, stolen.access_token, tenant.org_id, target)
    await _works(stubs, tenant.access_token, tenant.org_id)


async def test_password_reset_ends_every_sessions_access_tokens(stubs, tenant, other_tenant, admin_db):
    from tests.identity.test_account_service import _reset_link, _token_of

    target = await _second_organization(admin_db, tenant, other_tenant)
    stolen = await _login(stubs, tenant)
    link = await _reset_link(stubs.accounts, admin_db, tenant)
    await stubs.accounts.ResetPassword(apb.ResetPasswordRequest(token=_token_of(link), new_password=NEW_PASSWORD))
    for token in (stolen.access_token, tenant.access_token):
        await _refused_everywhere(stubs, token, tenant.org_id)
        await _cannot_switch(stubs, token, tenant.org_id, target)
    fresh = await _login(stubs, tenant, NEW_PASSWORD)
    await _works(stubs, fresh.access_token, tenant.org_id)


async def test_password_change_ends_the_other_sessions_and_old_tokens_mint_nothing(stubs, tenant, other_tenant,
                                                                                   admin_db):
    target = await _second_organization(admin_db, tenant, other_tenant)
    stolen = await _login(stubs, tenant)
    await stubs.accounts.ChangePassword(apb.ChangePasswordRequest(current_password=PASSWORD,
                                                                  new_password=NEW_PASSWORD), metadata=tenant.md)
    await _refused_everywhere(stubs, stolen.access_token, tenant.org_id)
    # The session that changed the password lives on, but a token issued before the change
    # cannot mint new tokens; a refreshed one can.
    await _works(stubs, tenant.access_token, tenant.org_id)
    await _cannot_switch(stubs, tenant.access_token, tenant.org_id, target, reason="PASSWORD_CHANGED")
    refreshed = (await stubs.identity.RefreshToken(pb.RefreshTokenRequest(refresh_token=tenant.refresh_token))).tokens
    await stubs.identity.SwitchOrganization(pb.SwitchOrganizationRequest(organization_id=target),
                                            metadata=_md(refreshed.access_token, tenant.org_id))


async def test_refresh_token_reuse_ends_the_sessions_access_tokens(stubs, tenant, other_tenant, admin_db):
    target = await _second_organization(admin_db, tenant, other_tenant)
    first = await _login(stubs, tenant)
    second = (await stubs.identity.RefreshToken(pb.RefreshTokenRequest(refresh_token=first.refresh_token))).tokens
    e = await fails(stubs.identity.RefreshToken(pb.RefreshTokenRequest(refresh_token=first.refresh_token)))
    assert error_reason(e) == "REFRESH_REVOKED"
    for token in (first.access_token, second.access_token):  # the thief's and the owner's
        await _refused_everywhere(stubs, token, tenant.org_id)
        await _cannot_switch(stubs, token, tenant.org_id, target)
    await _works(stubs, tenant.access_token, tenant.org_id)


async def test_revocations_are_listed_with_ids_and_times_only(stubs, tenant):
    stolen = await _login(stubs, tenant)
    await stubs.identity.Logout(pb.LogoutRequest(), metadata=_md(stolen.access_token, tenant.org_id))
    listed = await stubs.revocations.ListRevocations(rpb.ListRevocationsRequest())
    import jwt

    sid = jwt.decode(stolen.access_token, options={"verify_signature": False})["sid"]
    [mine] = [r for r in listed.revocations if r.subject_id == sid]
    assert mine.kind == rpb.Revocation.KIND_SESSION and mine.organization_id == tenant.org_id
    assert mine.not_before.ToSeconds() <= listed.list_time.ToSeconds() < mine.expire_time.ToSeconds()
    # from a later time: not listed again
    later = rpb.ListRevocationsRequest()
    later.since.FromSeconds(listed.list_time.ToSeconds() + 3600)
    assert sid not in {r.subject_id for r in (await stubs.revocations.ListRevocations(later)).revocations}
