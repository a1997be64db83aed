"""Re-authentication and creator-bound rights (issue 9, item 4): sensitive MFA changes need the
password or a recent sign-in (auth_time); an invitation to an existing account needs that
account's sign-in; a service account holds no more than its creator holds now."""

import uuid

import grpc
import jwt
import pyotp
import pytest
from givance.crm.v1 import donor_service_pb2 as dpb
from givance.identity.v1 import identity_service_pb2 as pb
from givance.identity.v1 import membership_service_pb2 as mpb
from givance.identity.v1 import mfa_service_pb2 as mfpb
from givance.identity.v1 import session_service_pb2 as spb

from services.identity.handlers import reauth
from tests.conftest import PASSWORD, Tenant
from tests.helpers import error_reason, eventually, fails, invalid, new_donor
from tests.identity.test_memberships import accept_token, invite, join


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


@pytest.fixture
def later(monkeypatch):
    """Moves identity's re-authentication clock past the maximum age of a sign-in."""
    def move(seconds: float = reauth.MAX_AGE_SECONDS + 1) -> None:
        base = reauth.time.time
        monkeypatch.setattr(reauth, "clock", lambda: base() + seconds)
    return move


# -- auth_time and re-authentication ------------------------------------------------------------


async def test_tokens_carry_the_sign_in_time_and_a_refresh_keeps_it(stubs, tenant):
    signed_up = claims(tenant.access_token)["auth_time"]
    assert abs(signed_up - claims(tenant.access_token)["iat"]) < 2
    refreshed = (await stubs.identity.RefreshToken(pb.RefreshTokenRequest(refresh_token=tenant.refresh_token))).tokens
    assert claims(refreshed.access_token)["auth_time"] == signed_up
    again = (await stubs.identity.RefreshToken(pb.RefreshTokenRequest(refresh_token=refreshed.refresh_token))).tokens
    assert claims(again.access_token)["auth_time"] == signed_up


async def test_an_old_sign_in_cannot_enroll_totp_without_the_password(stubs, tenant, later):
    later()
    e = await fails(stubs.mfa.EnrollTotp(mfpb.EnrollTotpRequest(), metadata=tenant.md),
                    grpc.StatusCode.UNAUTHENTICATED)
    assert error_reason(e) == "REAUTHENTICATION_REQUIRED"
    # a refreshed token is no fresher: the session's sign-in is what counts
    fresh = (await stubs.identity.RefreshToken(pb.RefreshTokenRequest(refresh_token=tenant.refresh_token))).tokens
    refreshed_md = (("authorization", f"Bearer {fresh.access_token}"), ("x-tenant-id", tenant.org_id))
    await fails(stubs.mfa.EnrollTotp(mfpb.EnrollTotpRequest(), metadata=refreshed_md),
                grpc.StatusCode.UNAUTHENTICATED)
    # a wrong password is a field error (and counts as a failed sign-in)
    await invalid(stubs.mfa.EnrollTotp(mfpb.EnrollTotpRequest(current_password="not my password at all"),
                                       metadata=tenant.md), "current_password")
    # the password does it
    enrollment = await stubs.mfa.EnrollTotp(mfpb.EnrollTotpRequest(current_password=PASSWORD), metadata=tenant.md)
    assert enrollment.secret


async def test_a_fresh_sign_in_enrolls_but_an_old_one_cannot_disable_or_regenerate(stubs, tenant, later):
    # just signed up: a recent sign-in, no password needed
    secret = (await stubs.mfa.EnrollTotp(mfpb.EnrollTotpRequest(), metadata=tenant.md)).secret
    codes = list((await stubs.mfa.ConfirmTotp(mfpb.ConfirmTotpRequest(code=pyotp.TOTP(secret).now()),
                                              metadata=tenant.md)).backup_codes)
    later()
    for call in (stubs.mfa.DisableMfa(mfpb.DisableMfaRequest(code=codes[0]), metadata=tenant.md),
                 stubs.mfa.RegenerateBackupCodes(mfpb.RegenerateBackupCodesRequest(code=codes[1]),
                                                 metadata=tenant.md)):
        e = await fails(call, grpc.StatusCode.UNAUTHENTICATED)
        assert error_reason(e) == "REAUTHENTICATION_REQUIRED"
    # nothing changed: the codes are still unspent and MFA is on
    new = await stubs.mfa.RegenerateBackupCodes(mfpb.RegenerateBackupCodesRequest(
        code=codes[1], current_password=PASSWORD), metadata=tenant.md)
    assert len(new.backup_codes) == 10
    await stubs.mfa.DisableMfa(mfpb.DisableMfaRequest(code=new.backup_codes[0], current_password=PASSWORD),
                               metadata=tenant.md)


# -- invitations to an existing account -------------------------------------------------------


async def test_an_invitation_to_an_existing_account_needs_its_sign_in(stubs, tenant, other_tenant, admin_db):
    inv = await invite(stubs, tenant, "viewer", other_tenant.email)
    token = await accept_token(admin_db, inv.id)
    # the link alone (say, read from a forwarded mail) joins nobody
    e = await fails(stubs.members.AcceptInvitation(mpb.AcceptInvitationRequest(token=token)),
                    grpc.StatusCode.UNAUTHENTICATED)
    assert error_reason(e) == "SIGN_IN_REQUIRED"
    # nor with somebody else's sign-in
    stranger = await stubs.sign_up("Stranger Org")
    e = await fails(stubs.members.AcceptInvitation(mpb.AcceptInvitationRequest(token=token), metadata=stranger.md),
                    grpc.StatusCode.PERMISSION_DENIED)
    assert error_reason(e) == "INVITATION_FOR_ANOTHER_ACCOUNT"
    assert await admin_db.fetchval("SELECT count(*) FROM identity.user_organizations WHERE user_id = $1",
                                   uuid.UUID(other_tenant.user_id)) == 1
    # signed in to the account (in its own organization): joined, with tokens for the new one
    resp = await stubs.members.AcceptInvitation(mpb.AcceptInvitationRequest(token=token),
                                                metadata=other_tenant.md)
    t = resp.tokens
    assert (t.user_id, t.organization_id, t.role) == (other_tenant.user_id, tenant.org_id, "viewer")
    assert claims(t.access_token)["auth_time"] == claims(other_tenant.access_token)["auth_time"]


# -- service accounts bound to their creator's rights ------------------------------------------


async def _service_account(stubs, creator: Tenant, permissions: list[str]) -> tuple[str, str]:
    sa = await stubs.sessions.CreateServiceAccount(spb.CreateServiceAccountRequest(
        name="integration", permissions=permissions), metadata=creator.md)
    return sa.service_account.client_id, sa.client_secret


async def _service_token(stubs, client: tuple[str, str]) -> str:
    return (await stubs.identity.IssueServiceToken(pb.IssueServiceTokenRequest(
        client_id=client[0], client_secret=client[1]))).access_token


async def test_a_service_account_loses_what_its_creator_loses(stubs, tenant, admin_db):
    admin = await join(stubs, admin_db, tenant, role="admin")
    client = await _service_account(stubs, admin, ["crm.*", "identity.members.read"])
    assert set(claims(await _service_token(stubs, client))["perms"]) == {"crm.*", "identity.members.read"}
    # the creator becomes a viewer: the next token holds only what a viewer holds of crm.*
    await stubs.members.UpdateMember(mpb.UpdateMemberRequest(member={"user_id": admin.user_id, "role": "viewer"}),
                                     metadata=tenant.md)
    token = await _service_token(stubs, client)
    granted = set(claims(token)["perms"])
    assert "crm.donors.read" in granted and "identity.members.read" in granted
    assert not {"crm.*", "crm.donors.write", "crm.donors.delete"} & granted
    md = (("authorization", f"Bearer {token}"), ("x-tenant-id", tenant.org_id))
    await stubs.donors.ListDonors(dpb.ListDonorsRequest(), metadata=md)
    await fails(stubs.donors.CreateDonor(new_donor(), metadata=md), grpc.StatusCode.PERMISSION_DENIED)


async def test_a_suspended_or_removed_creators_service_accounts_stop_working(stubs, tenant, admin_db):
    admin = await join(stubs, admin_db, tenant, role="admin")
    client = await _service_account(stubs, admin, ["crm.donors.read"])
    token = await _service_token(stubs, client)
    md = (("authorization", f"Bearer {token}"), ("x-tenant-id", tenant.org_id))
    await stubs.donors.ListDonors(dpb.ListDonorsRequest(), metadata=md)
    await stubs.members.SuspendMember(mpb.SuspendMemberRequest(user_id=admin.user_id), metadata=tenant.md)
    # no new token, and the one issued is refused (here at once, on crm when the broadcast lands)
    e = await fails(stubs.identity.IssueServiceToken(pb.IssueServiceTokenRequest(
        client_id=client[0], client_secret=client[1])), grpc.StatusCode.UNAUTHENTICATED)
    assert error_reason(e) == "SERVICE_ACCOUNT_CREATOR_INACTIVE"

    async def refused_on_crm() -> bool:
        try:
            await stubs.donors.ListDonors(dpb.ListDonorsRequest(), metadata=md)
        except grpc.aio.AioRpcError as err:
            return err.code() == grpc.StatusCode.UNAUTHENTICATED
        return False

    await eventually(refused_on_crm)
    # reactivated: tokens again; removed: none
    await stubs.members.ReactivateMember(mpb.ReactivateMemberRequest(user_id=admin.user_id), metadata=tenant.md)
    await _service_token(stubs, client)
    await stubs.members.RemoveMember(mpb.RemoveMemberRequest(user_id=admin.user_id), metadata=tenant.md)
    await fails(stubs.identity.IssueServiceToken(pb.IssueServiceTokenRequest(
        client_id=client[0], client_secret=client[1])), grpc.StatusCode.UNAUTHENTICATED)
