"""Sessions (refresh families), logout, service accounts and their tokens, signing-key rotation."""

import hashlib
import time
import uuid
from datetime import UTC

import grpc
import jwt
import pytest
from givance.crm.v1 import donor_service_pb2 as dpb
from givance.identity.v1 import identity_service_pb2 as pb
from givance.identity.v1 import identity_service_pb2_grpc
from givance.identity.v1 import session_service_pb2 as spb

from chassis.auth import JwksCache
from services.identity.__main__ import password_hasher
from services.identity.settings import IdentitySettings
from tests.conftest import PASSWORD, Tenant
from tests.helpers import error_reason, eventually, fails, field_violations, new_donor


@pytest.fixture
def sessions(stubs):
    return stubs.sessions


def _md(token: str, org_id: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"), ("x-tenant-id", org_id))


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


async def _login(stubs, tenant: Tenant, email: str | None = None):
    resp = await stubs.identity.Login(pb.LoginRequest(email=email or tenant.email, password=PASSWORD,
                                                      organization_id=tenant.org_id))
    assert resp.WhichOneof("result") == "tokens"
    return resp.tokens


async def _member(stubs, admin_db, tenant: Tenant, role: str = "admin"):
    """A second member of the tenant's organization (written directly: memberships are another
    area's API), logged in."""
    email = f"member-{uuid.uuid4().hex[:10]}@example.org"
    user_id = uuid.uuid4()
    await admin_db.execute(
        "INSERT INTO identity.users (id, email, password_hash, default_organization_id) VALUES ($1, $2, $3, $4)",
        user_id, email, password_hasher(IdentitySettings()).hash(PASSWORD), uuid.UUID(tenant.org_id))
    await admin_db.execute(
        "INSERT INTO identity.user_organizations (user_id, organization_id, role, status, joined_at) "
        "VALUES ($1, $2, $3, 'active', now())", user_id, uuid.UUID(tenant.org_id), role)
    return await _login(stubs, tenant, email)


# -- sessions -------------------------------------------------------------------------------


async def test_sessions_are_listed_with_the_current_one_and_revoked(stubs, sessions, tenant, admin_db,
                                                                   identity_host):
    sign_up_sid = _claims(tenant.access_token)["sid"]
    second = await _login(stubs, tenant)
    third = await _login(stubs, tenant)
    second_sid, third_sid = _claims(second.access_token)["sid"], _claims(third.access_token)["sid"]
    # A refresh records the client and keeps the session's start.
    async with grpc.aio.insecure_channel(f"127.0.0.1:{identity_host.bound_port}",
                                         options=[("grpc.primary_user_agent", "givance-test-agent/1.0")]) as ch:
        refreshed = (await identity_service_pb2_grpc.IdentityServiceStub(ch).RefreshToken(
            pb.RefreshTokenRequest(refresh_token=second.refresh_token))).tokens
    listed = (await sessions.ListSessions(spb.ListSessionsRequest(), metadata=tenant.md)).sessions
    by_id = {s.id: s for s in listed}
    assert set(by_id) == {sign_up_sid, second_sid, third_sid}
    assert [s.id for s in listed if s.current] == [sign_up_sid]
    assert all(s.organization_id == tenant.org_id for s in listed)
    s2 = by_id[second_sid]
    assert s2.create_time.ToDatetime() <= s2.last_use_time.ToDatetime() < s2.expire_time.ToDatetime()
    row = await admin_db.fetchrow(
        "SELECT user_agent, ip_address, session_created_at, "
        "(SELECT min(created_at) FROM identity.refresh_tokens WHERE family_id = $1) AS began "
        "FROM identity.refresh_tokens WHERE family_id = $1 AND used_at IS NULL", uuid.UUID(second_sid))
    assert "givance-test-agent/1.0" in row["user_agent"] and row["ip_address"] == "127.0.0.1"
    assert row["session_created_at"] == row["began"]
    assert s2.create_time.ToDatetime(tzinfo=UTC) == row["began"]

    await sessions.RevokeSession(spb.RevokeSessionRequest(id=second_sid), metadata=tenant.md)
    listed = (await sessions.ListSessions(spb.ListSessionsRequest(), metadata=tenant.md)).sessions
    assert {s.id for s in listed} == {sign_up_sid, third_sid}
    e = await fails(stubs.identity.RefreshToken(pb.RefreshTokenRequest(refresh_token=refreshed.refresh_token)))
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED
    # the other sessions go on
    assert (await stubs.identity.RefreshToken(pb.RefreshTokenRequest(refresh_token=third.refresh_token))).tokens
    # revoking again is harmless
    await sessions.RevokeSession(spb.RevokeSessionRequest(id=second_sid), metadata=tenant.md)


async def test_another_users_or_tenants_session_is_not_found(stubs, sessions, tenant, other_tenant, admin_db):
    member = await _member(stubs, admin_db, tenant)
    member_sid = _claims(member.access_token)["sid"]
    for sid, md in ((member_sid, tenant.md), (_claims(tenant.access_token)["sid"], other_tenant.md),
                    (str(uuid.uuid4()), tenant.md)):
        e = await fails(sessions.RevokeSession(spb.RevokeSessionRequest(id=sid), metadata=md))
        assert e.code() == grpc.StatusCode.NOT_FOUND
    # nothing was revoked: the member still refreshes, and sees only their own session
    assert (await stubs.identity.RefreshToken(pb.RefreshTokenRequest(refresh_token=member.refresh_token))).tokens
    mine = (await sessions.ListSessions(spb.ListSessionsRequest(),
                                        metadata=_md(member.access_token, tenant.org_id))).sessions
    assert [s.id for s in mine] == [member_sid]
    theirs = (await sessions.ListSessions(spb.ListSessionsRequest(), metadata=other_tenant.md)).sessions
    assert [s.id for s in theirs] == [_claims(other_tenant.access_token)["sid"]]


@pytest.mark.parametrize("bad", ["", "not-a-uuid"])
async def test_revoke_session_bad_id_is_invalid_and_revokes_nothing(stubs, sessions, tenant, admin_db, bad):
    before = await admin_db.fetchval("SELECT count(*) FROM identity.refresh_tokens WHERE revoked_at IS NOT NULL")
    e = await fails(sessions.RevokeSession(spb.RevokeSessionRequest(id=bad), metadata=tenant.md))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "id" in field_violations(e)
    assert await admin_db.fetchval(
        "SELECT count(*) FROM identity.refresh_tokens WHERE revoked_at IS NOT NULL") == before


async def test_logout_ends_the_current_session_only(stubs, sessions, tenant):
    tokens = await _login(stubs, tenant)
    sid = _claims(tokens.access_token)["sid"]
    await stubs.identity.Logout(pb.LogoutRequest(), metadata=_md(tokens.access_token, tenant.org_id))
    e = await fails(stubs.identity.RefreshToken(pb.RefreshTokenRequest(refresh_token=tokens.refresh_token)))
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED
    listed = (await sessions.ListSessions(spb.ListSessionsRequest(), metadata=tenant.md)).sessions
    assert sid not in {s.id for s in listed} and len(listed) == 1
    # the ended session's access token no longer works, not even to log out again (issue 9);
    # the sign-up session still refreshes
    e = await fails(stubs.identity.Logout(pb.LogoutRequest(), metadata=_md(tokens.access_token, tenant.org_id)))
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED
    assert (await stubs.identity.RefreshToken(pb.RefreshTokenRequest(refresh_token=tenant.refresh_token))).tokens


async def test_logout_and_sessions_need_a_token(stubs, sessions):
    assert (await fails(stubs.identity.Logout(pb.LogoutRequest()))).code() == grpc.StatusCode.UNAUTHENTICATED
    e = await fails(sessions.ListSessions(spb.ListSessionsRequest()))
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED


# -- service accounts -------------------------------------------------------------------------


async def _service_account(sessions, tenant, name="nightly export", permissions=("crm.donors.read",)):
    return await sessions.CreateServiceAccount(
        spb.CreateServiceAccountRequest(name=name, permissions=list(permissions)), metadata=tenant.md)


async def test_service_account_token_works_on_crm_with_its_permissions_only(stubs, sessions, tenant, admin_db):
    created = await _service_account(sessions, tenant)
    account, secret = created.service_account, created.client_secret
    assert account.client_id.startswith(uuid.UUID(tenant.org_id).hex + ".") and len(secret) >= 43
    assert list(account.permissions) == ["crm.donors.read"] and account.name == "nightly export"
    # the secret is stored as its hash only
    row = await admin_db.fetchrow("SELECT * FROM identity.service_accounts WHERE id = $1", uuid.UUID(account.id))
    assert bytes(row["secret_hash"]) == hashlib.sha256(secret.encode()).digest()
    assert secret not in str(dict(row))

    issued = await stubs.identity.IssueServiceToken(
        pb.IssueServiceTokenRequest(client_id=account.client_id, client_secret=secret))
    claims = _claims(issued.access_token)
    assert claims["kind"] == "service" and claims["sub"] == account.id and claims["org"] == tenant.org_id
    assert claims["perms"] == ["crm.donors.read"] and "sid" not in claims
    assert 14 * 60 <= claims["exp"] - claims["iat"] <= 15 * 60
    assert issued.expire_time.seconds == claims["exp"]
    md = _md(issued.access_token, tenant.org_id)
    await stubs.donors.ListDonors(dpb.ListDonorsRequest(), metadata=md)
    e = await fails(stubs.donors.CreateDonor(new_donor(), metadata=md))
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED
    e = await fails(sessions.ListServiceAccounts(spb.ListServiceAccountsRequest(), metadata=md))
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED

    listed = (await sessions.ListServiceAccounts(spb.ListServiceAccountsRequest(), metadata=tenant.md))
    assert [a.id for a in listed.service_accounts] == [account.id]
    assert listed.service_accounts[0].client_id == account.client_id


async def test_deleted_service_account_gets_no_tokens_and_its_tokens_are_refused(stubs, sessions, tenant,
                                                                                 other_tenant):
    created = await _service_account(sessions, tenant)
    account, secret = created.service_account, created.client_secret
    req = pb.IssueServiceTokenRequest(client_id=account.client_id, client_secret=secret)
    token = (await stubs.identity.IssueServiceToken(req)).access_token
    md = _md(token, tenant.org_id)
    await stubs.donors.ListDonors(dpb.ListDonorsRequest(), metadata=md)
    # another tenant cannot see or delete it
    e = await fails(sessions.DeleteServiceAccount(spb.DeleteServiceAccountRequest(id=account.id),
                                                 metadata=other_tenant.md))
    assert e.code() == grpc.StatusCode.NOT_FOUND
    assert not (await sessions.ListServiceAccounts(spb.ListServiceAccountsRequest(),
                                                   metadata=other_tenant.md)).service_accounts

    await sessions.DeleteServiceAccount(spb.DeleteServiceAccountRequest(id=account.id), metadata=tenant.md)
    e = await fails(stubs.identity.IssueServiceToken(req))
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED
    assert not (await sessions.ListServiceAccounts(spb.ListServiceAccountsRequest(),
                                                   metadata=tenant.md)).service_accounts
    e = await fails(sessions.DeleteServiceAccount(spb.DeleteServiceAccountRequest(id=account.id), metadata=tenant.md))
    assert e.code() == grpc.StatusCode.NOT_FOUND

    # identity refuses the token it would have accepted at once (UNAUTHENTICATED, before any
    # permission check); the deletion is broadcast (identity.membership.changed) and crm refuses
    # the token it accepted before, without waiting for it to expire.
    e = await fails(sessions.ListSessions(spb.ListSessionsRequest(), metadata=md))
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED
    async def refused():
        try:
            await stubs.donors.ListDonors(dpb.ListDonorsRequest(), metadata=md)
        except grpc.aio.AioRpcError as err:
            return err.code() == grpc.StatusCode.UNAUTHENTICATED
        return False

    await eventually(refused, what="crm refuses the deleted service account's token")


async def test_wrong_or_unknown_client_credentials_are_unauthenticated(stubs, sessions, tenant, other_tenant):
    created = await _service_account(sessions, tenant)
    client_id = created.service_account.client_id
    other_org_hex = uuid.UUID(other_tenant.org_id).hex
    cases = [
        (client_id, created.client_secret + "x"),
        (client_id, "wrong"),
        (f"{other_org_hex}.{client_id.split('.', 1)[1]}", created.client_secret),  # right secret, other tenant
        (f"{uuid.uuid4().hex}.nope", created.client_secret),
        ("garbage", created.client_secret),
    ]
    errors = [await fails(stubs.identity.IssueServiceToken(pb.IssueServiceTokenRequest(client_id=c, client_secret=s)))
              for c, s in cases]
    assert {e.code() for e in errors} == {grpc.StatusCode.UNAUTHENTICATED}
    assert len({e.details() for e in errors}) == 1


async def test_service_account_bad_input_names_fields_and_writes_nothing(stubs, sessions, tenant, admin_db):
    before = await admin_db.fetchval("SELECT count(*) FROM identity.service_accounts")
    e = await fails(sessions.CreateServiceAccount(spb.CreateServiceAccountRequest(
        name="  ", permissions=["crm.donors.read", "Not A Permission", "crm.nothing.here"]), metadata=tenant.md))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {"name", "permissions[1]", "permissions[2]"} <= set(field_violations(e))
    e = await fails(sessions.CreateServiceAccount(spb.CreateServiceAccountRequest(name="x" * 101),
                                                 metadata=tenant.md))
    assert {"name", "permissions"} <= set(field_violations(e))
    for bad_id in ("", "nope"):
        e = await fails(sessions.DeleteServiceAccount(spb.DeleteServiceAccountRequest(id=bad_id), metadata=tenant.md))
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "id" in field_violations(e)
    e = await fails(stubs.identity.IssueServiceToken(pb.IssueServiceTokenRequest()))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {"client_id", "client_secret"} <= set(field_violations(e))
    assert await admin_db.fetchval("SELECT count(*) FROM identity.service_accounts") == before


async def test_a_service_account_never_exceeds_its_creator(stubs, sessions, tenant, admin_db):
    # A service account that may create service accounts, and read donors: nothing more.
    creator = await _service_account(sessions, tenant, "provisioner",
                                     ("identity.service_accounts.write", "crm.donors.read"))
    token = (await stubs.identity.IssueServiceToken(pb.IssueServiceTokenRequest(
        client_id=creator.service_account.client_id, client_secret=creator.client_secret))).access_token
    md = _md(token, tenant.org_id)
    before = await admin_db.fetchval("SELECT count(*) FROM identity.service_accounts")
    for perms in (["crm.donors.write"], ["crm.*"], ["*"]):
        e = await fails(sessions.CreateServiceAccount(spb.CreateServiceAccountRequest(name="escalate",
                                                                                      permissions=perms), metadata=md))
        assert e.code() == grpc.StatusCode.PERMISSION_DENIED and error_reason(e) == "PERMISSION_ESCALATION"
    assert await admin_db.fetchval("SELECT count(*) FROM identity.service_accounts") == before
    ok = await sessions.CreateServiceAccount(spb.CreateServiceAccountRequest(
        name="reader", permissions=["crm.donors.read"]), metadata=md)
    assert list(ok.service_account.permissions) == ["crm.donors.read"]


# -- signing keys -----------------------------------------------------------------------------


@pytest.fixture
async def operator(stubs, admin_db, tenant):
    """tenant's user flagged as a platform operator (tests/identity/test_platform.py does it through
    the operators command), signed in again: a token with platform.*."""
    await admin_db.execute("INSERT INTO identity.platform_operators (user_id, permissions, granted_by) "
                           "VALUES ($1, '{platform.*}', 'test')", uuid.UUID(tenant.user_id))
    fresh = await _login(stubs, tenant)
    yield Tenant(org_id=tenant.org_id, user_id=tenant.user_id, email=tenant.email, access_token=fresh.access_token,
                 refresh_token=fresh.refresh_token)
    await admin_db.execute("DELETE FROM identity.platform_operators WHERE user_id = $1", uuid.UUID(tenant.user_id))


async def test_rotation_signs_new_tokens_with_a_new_key_and_old_tokens_still_work(stubs, sessions, tenant, operator,
                                                                                  identity_host, admin_db):
    old_kid = jwt.get_unverified_header(tenant.access_token)["kid"]
    # both services have verified an old-key token before the rotation
    await stubs.donors.ListDonors(dpb.ListDonorsRequest(), metadata=tenant.md)
    await sessions.ListSessions(spb.ListSessionsRequest(), metadata=tenant.md)

    new_kid = (await sessions.RotateSigningKey(spb.RotateSigningKeyRequest(), metadata=operator.md)).kid
    assert new_kid and new_kid != old_kid
    keys = {k.kid for k in (await stubs.identity.GetJwks(pb.GetJwksRequest())).keys}
    assert {old_kid, new_kid} <= keys
    row = await admin_db.fetchrow("SELECT retired_at FROM identity.signing_keys WHERE kid = $1", old_kid)
    assert row["retired_at"] is not None
    assert await admin_db.fetchval("SELECT count(*) FROM identity.signing_keys WHERE retired_at IS NULL") == 1

    fresh = await _login(stubs, tenant)
    assert jwt.get_unverified_header(fresh.access_token)["kid"] == new_kid
    fresh_md = _md(fresh.access_token, tenant.org_id)
    # new tokens at once, old tokens until they expire: on crm and on identity
    for md in (fresh_md, tenant.md):
        await stubs.donors.ListDonors(dpb.ListDonorsRequest(), metadata=md)
        await sessions.ListSessions(spb.ListSessionsRequest(), metadata=md)
    # a refresh and a service token are signed with the new key too
    refreshed = (await stubs.identity.RefreshToken(pb.RefreshTokenRequest(refresh_token=fresh.refresh_token))).tokens
    assert jwt.get_unverified_header(refreshed.access_token)["kid"] == new_kid


async def test_a_replica_picks_up_a_rotation_made_elsewhere(identity_host, tenant, operator):
    from chassis.context import Principal
    from services.identity.handlers.keys import SigningKeys

    keys = identity_host.registrations[0].servicer.deps.keys
    replica = SigningKeys(keys.db, keys.keyring)  # a second identity process, in effect
    await replica.load_or_create()
    assert replica.kid == keys.kid
    assert await replica.reload() is False
    # the serving process rotates; the other replica switches on its next reload
    owner = Principal(subject=tenant.user_id, tenant_id=uuid.UUID(tenant.org_id), role="owner",
                      permissions=("*", "platform.*"))
    kid = await keys.rotate(owner)
    assert replica.kid != kid
    assert await replica.reload() is True and replica.kid == kid
    token = replica.sign({"sub": "x"})
    assert jwt.get_unverified_header(token)["kid"] == kid


async def test_only_a_platform_operator_rotates_keys(stubs, sessions, tenant, admin_db):
    before = await admin_db.fetchval("SELECT count(*) FROM identity.signing_keys")
    await fails(sessions.RotateSigningKey(spb.RotateSigningKeyRequest(), metadata=tenant.md),
                grpc.StatusCode.PERMISSION_DENIED)  # an owner's "*" does not cover it
    admin = await _member(stubs, admin_db, tenant, role="admin")  # nor identity.*
    e = await fails(sessions.RotateSigningKey(spb.RotateSigningKeyRequest(),
                                             metadata=_md(admin.access_token, tenant.org_id)))
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED
    staff = await _member(stubs, admin_db, tenant, role="staff")
    e = await fails(sessions.RotateSigningKey(spb.RotateSigningKeyRequest(),
                                             metadata=_md(staff.access_token, tenant.org_id)))
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED
    assert await admin_db.fetchval("SELECT count(*) FROM identity.signing_keys") == before


async def test_rotations_are_bounded_by_the_published_keys(stubs, sessions, operator, admin_db, monkeypatch):
    from services.identity.domain import keys as key_rules

    published = len((await stubs.identity.GetJwks(pb.GetJwksRequest())).keys)
    monkeypatch.setattr(key_rules, "MAX_PUBLISHED_KEYS", published)
    before = await admin_db.fetchval("SELECT count(*) FROM identity.signing_keys")
    e = await fails(sessions.RotateSigningKey(spb.RotateSigningKeyRequest(), metadata=operator.md))
    assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and error_reason(e) == "TOO_MANY_SIGNING_KEYS"
    assert await admin_db.fetchval("SELECT count(*) FROM identity.signing_keys") == before


async def test_jwks_cache_looks_up_a_new_kid_at_once_and_throttles_made_up_ones():
    fetches = []
    published = [{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "a"}]

    async def fetch():
        fetches.append(time.monotonic())
        return list(published)

    cache = JwksCache(fetch, refetch_interval=3600, burst=3)
    assert await cache.key("a") is not None and len(fetches) == 1
    published.append({**published[0], "kid": "b"})  # rotated right after the last fetch
    assert await cache.key("b") is not None and len(fetches) == 2
    assert await cache.key("a") is not None and len(fetches) == 2  # known: no fetch
    assert await cache.key("ghost") is None and len(fetches) == 3
    assert await cache.key("ghost") is None and len(fetches) == 3  # the same miss is not refetched
    for i in range(10):
        assert await cache.key(f"made-up-{i}") is None
    assert len(fetches) == 3  # the burst is spent for this interval
