"""Platform operators (issue 9, item 2): a principal no sign-up can obtain, granted by command,
with its own audit trail; signing keys and KYC review are theirs, not any tenant's."""

import asyncio
import os
import sys
import uuid

import asyncpg
import grpc
import jwt
import pytest
from givance.identity.v1 import account_service_pb2 as apb
from givance.identity.v1 import audit_service_pb2 as aupb
from givance.identity.v1 import identity_service_pb2 as pb
from givance.identity.v1 import member_pb2
from givance.identity.v1 import membership_service_pb2 as mpb
from givance.identity.v1 import session_service_pb2 as spb
from google.type import date_pb2

from chassis.context import permission_granted
from services.identity.domain import roles
from tests.conftest import PASSWORD, Tenant
from tests.helpers import error_reason, fails, invalid


async def operators(*args: str) -> str:
    """Runs the operators command (python -m services.identity.operators) as an operator would:
    a separate process, with the migrations' DATABASE_URL."""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "services.identity.operators", *args,
                                                env=os.environ.copy(), stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def login(stubs, tenant: Tenant) -> Tenant:
    t = (await stubs.identity.Login(pb.LoginRequest(email=tenant.email, password=PASSWORD))).tokens
    return Tenant(org_id=t.organization_id, user_id=t.user_id, email=tenant.email, access_token=t.access_token,
                  refresh_token=t.refresh_token)


def perms(token: str) -> list[str]:
    return jwt.decode(token, options={"verify_signature": False})["perms"]


async def trail(stubs, operator: Tenant, action: str = "") -> list[aupb.PlatformActivityEntry]:
    return list((await stubs.audit.ListPlatformActivity(aupb.ListPlatformActivityRequest(action=action,
                                                                                         page_size=100),
                                                         metadata=operator.md)).entries)


def test_star_never_covers_a_platform_permission():
    assert permission_granted(("*",), "crm.donors.read")
    assert not permission_granted(("*",), "platform.signing_keys.rotate")
    assert permission_granted(("platform.*",), "platform.signing_keys.rotate")
    assert not permission_granted(("identity.*",), "platform.kyc.review")
    assert not roles.holds(roles.SYSTEM_ROLES["owner"], "platform.kyc.review")
    assert "platform.kyc.review" not in roles.effective_permissions(("*",), (), ("crm.donors.delete",))


async def test_an_owner_cannot_rotate_signing_keys_or_hand_out_platform_permissions(stubs, tenant, admin_db):
    before = await admin_db.fetchval("SELECT count(*) FROM identity.signing_keys")
    e = await fails(stubs.sessions.RotateSigningKey(spb.RotateSigningKeyRequest(), metadata=tenant.md),
                    grpc.StatusCode.PERMISSION_DENIED)
    assert error_reason(e) == "PERMISSION_MISSING"
    assert await admin_db.fetchval("SELECT count(*) FROM identity.signing_keys") == before
    # no role, override or service account may name a platform permission
    await invalid(stubs.members.CreateRole(mpb.CreateRoleRequest(role=member_pb2.Role(
        name="Rotators", permissions=["platform.signing_keys.rotate"])), metadata=tenant.md), "role.permissions[0]")
    await invalid(stubs.sessions.CreateServiceAccount(spb.CreateServiceAccountRequest(
        name="rotator", permissions=["platform.*"]), metadata=tenant.md), "permissions[0]")
    # nor may anyone read the platform trail
    await fails(stubs.audit.ListPlatformActivity(aupb.ListPlatformActivityRequest(), metadata=tenant.md),
                grpc.StatusCode.PERMISSION_DENIED)


async def test_a_granted_operator_rotates_and_a_revoked_one_stops_at_once(stubs, tenant, admin_db):
    await operators("grant", tenant.email)
    # the grant shows in the next token (the one in hand was issued before it)
    assert "platform.*" not in perms(tenant.access_token)
    operator = await login(stubs, tenant)
    assert "platform.*" in perms(operator.access_token)
    assert tenant.email in await operators("list")

    kid = (await stubs.sessions.RotateSigningKey(spb.RotateSigningKeyRequest(), metadata=operator.md)).kid
    assert jwt.get_unverified_header((await login(stubs, tenant)).access_token)["kid"] == kid
    # the grant and the rotation are in the platform trail, which the operator reads
    entries = await trail(stubs, operator)
    by_action = {e.action: e for e in entries if e.resource_id in (tenant.user_id, kid)}
    grant = by_action["platform.operator.grant"]
    assert grant.actor.startswith("command:") and grant.detail["after"] == ["platform.*"]
    rotate = by_action["platform.signing_key.rotate"]
    assert (rotate.actor, rotate.organization_id, rotate.detail["kid"]) == (tenant.user_id, tenant.org_id, kid)
    assert [e.action for e in await trail(stubs, operator, "platform.signing_key.")] \
        == ["platform.signing_key.rotate"] * len([e for e in entries if e.action == "platform.signing_key.rotate"])

    await operators("revoke", tenant.email)
    # at once: the token still carries platform.*, but every platform call re-reads the grant
    e = await fails(stubs.sessions.RotateSigningKey(spb.RotateSigningKeyRequest(), metadata=operator.md),
                    grpc.StatusCode.PERMISSION_DENIED)
    assert error_reason(e) == "PLATFORM_OPERATOR_REQUIRED"
    await fails(stubs.audit.ListPlatformActivity(aupb.ListPlatformActivityRequest(), metadata=operator.md),
                grpc.StatusCode.PERMISSION_DENIED)
    assert "platform.*" not in perms((await login(stubs, tenant)).access_token)
    assert tenant.email not in await operators("list")
    revoked = await admin_db.fetchrow("SELECT actor, detail FROM identity.platform_activity "
                                      "WHERE action = 'platform.operator.revoke' AND resource_id = $1",
                                      tenant.user_id)
    assert revoked["actor"].startswith("command:")


async def test_identity_itself_cannot_make_an_operator(env, tenant):
    """The service's own database role reads the operators but cannot write them, nor rewrite the trail."""
    from chassis.settings import ServiceSettings, plain_dsn

    conn = await asyncpg.connect(plain_dsn(ServiceSettings().app_database_url("identity")))
    try:
        assert await conn.fetchval("SELECT count(*) FROM identity.platform_operators WHERE user_id = $1",
                                   uuid.UUID(tenant.user_id)) == 0
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("INSERT INTO identity.platform_operators (user_id, permissions, granted_by) "
                               "VALUES ($1, '{platform.*}', 'sql')", uuid.UUID(tenant.user_id))
        assert await conn.execute("UPDATE identity.platform_activity SET actor = 'nobody'") == "UPDATE 0"
        assert await conn.execute("DELETE FROM identity.platform_activity") == "DELETE 0"
    finally:
        await conn.close()


async def test_kyc_is_reviewed_by_a_platform_operator_not_by_an_organization(stubs, tenant, other_tenant, admin_db):
    kyc = apb.Kyc(date_of_birth=date_pb2.Date(year=1990, month=5, day=17), national_id="X7Q9Z4K2W",
                  national_id_type="passport", address="1 Main St", city="Springfield", country="US")
    await stubs.accounts.UpdateKyc(apb.UpdateKycRequest(kyc=kyc), metadata=other_tenant.md)
    review = apb.ReviewKycRequest(user_id=other_tenant.user_id, status=apb.KYC_STATUS_VERIFIED)
    # an owner, of their organization or any other, does not review anyone's KYC
    await fails(stubs.accounts.ReviewKyc(review, metadata=tenant.md), grpc.StatusCode.PERMISSION_DENIED)
    reviewer = await stubs.sign_up("Platform Ops")
    await operators("grant", reviewer.email, "platform.kyc.review")
    reviewer = await login(stubs, reviewer)
    assert "platform.kyc.review" in perms(reviewer.access_token)
    # a user of any organization: KYC is the user's
    kyc = (await stubs.accounts.ReviewKyc(review, metadata=reviewer.md)).kyc
    assert kyc.status == apb.KYC_STATUS_VERIFIED
    mine = (await stubs.accounts.GetAccount(apb.GetAccountRequest(), metadata=other_tenant.md)).account
    assert mine.kyc.status == apb.KYC_STATUS_VERIFIED
    row = await admin_db.fetchrow("SELECT actor, detail FROM identity.platform_activity "
                                  "WHERE action = 'platform.kyc.review' AND resource_id = $1", other_tenant.user_id)
    assert row["actor"] == reviewer.user_id
    # this grant holds only KYC review: no rotation, no trail
    await fails(stubs.sessions.RotateSigningKey(spb.RotateSigningKeyRequest(), metadata=reviewer.md),
                grpc.StatusCode.PERMISSION_DENIED)
    await operators("revoke", reviewer.email)
