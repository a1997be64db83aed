"""MFA: TOTP enrollment, backup codes, the login challenge, trusted devices, the organization's policy.

The server checks TOTP codes against `services.identity.handlers.mfa.clock`; each test pins it
(mid-step) so no code straddles a 30-second boundary, and moves it on a step at a time.
"""

from __future__ import annotations

import time
import uuid

import grpc
import jwt
import pyotp
import pytest
from givance.events.v1 import audit_events_pb2
from givance.identity.v1 import identity_service_pb2 as pb
from givance.identity.v1 import identity_service_pb2_grpc, mfa_service_pb2_grpc
from givance.identity.v1 import mfa_service_pb2 as mpb
from givance.identity.v1 import organization_service_pb2 as opb

from chassis import events
from services.identity.handlers import mfa as mfa_handlers
from tests.conftest import PASSWORD, Tenant
from tests.helpers import error_reason, fails, field_violations

USER_AGENT = "givance-mfa-tests"


class Clock:
    def __init__(self) -> None:
        self.t = (int(time.time()) // 30) * 30 + 15.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float = 30) -> None:
        self.t += seconds


@pytest.fixture
def clock(monkeypatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(mfa_handlers, "clock", c)
    return c


@pytest.fixture(scope="module")
async def channel(identity_host):
    ch = grpc.aio.insecure_channel(f"127.0.0.1:{identity_host.bound_port}",
                                   options=[("grpc.primary_user_agent", USER_AGENT)])
    yield ch
    await ch.close()


@pytest.fixture(scope="module")
def mfa(channel) -> mfa_service_pb2_grpc.MfaServiceStub:
    return mfa_service_pb2_grpc.MfaServiceStub(channel)


@pytest.fixture(scope="module")
def ident(channel) -> identity_service_pb2_grpc.IdentityServiceStub:
    return identity_service_pb2_grpc.IdentityServiceStub(channel)


def md(access_token: str, org_id: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {access_token}"), ("x-tenant-id", org_id))


def perms(access_token: str) -> list[str]:
    return jwt.decode(access_token, options={"verify_signature": False})["perms"]


async def enroll(mfa, tenant: Tenant, clock: Clock, metadata=None) -> tuple[pyotp.TOTP, list[str]]:
    """Enrolls and confirms TOTP (a code of the clock's current step); returns it and the backup codes."""
    metadata = metadata or tenant.md
    enrollment = await mfa.EnrollTotp(mpb.EnrollTotpRequest(), metadata=metadata)
    totp = pyotp.TOTP(enrollment.secret)
    confirmed = await mfa.ConfirmTotp(mpb.ConfirmTotpRequest(code=totp.at(clock.t)), metadata=metadata)
    return totp, list(confirmed.backup_codes)


async def challenge(ident, tenant: Tenant, device_token: str = "") -> str:
    resp = await ident.Login(pb.LoginRequest(email=tenant.email, password=PASSWORD, device_token=device_token))
    assert resp.WhichOneof("result") == "mfa_challenge", "expected an MFA challenge, got tokens"
    return resp.mfa_challenge.challenge_token


async def audit_actions(admin_db, tenant: Tenant) -> list[audit_events_pb2.AuditRecordedEvent]:
    rows = await admin_db.fetch(
        "SELECT body FROM identity.outbox WHERE routing_key = 'identity.audit.recorded' AND tenant_id = $1 "
        "ORDER BY id", uuid.UUID(tenant.org_id))
    found = []
    for row in rows:
        event = events.unpack(events.parse(row["body"]), audit_events_pb2.AuditRecordedEvent)
        if event.action.startswith(("identity.mfa.", "identity.trusted_device.")):
            found.append(event)
    return found


# -- enrollment ---------------------------------------------------------------------------------


async def test_enrollment_returns_the_secret_once_and_confirmation_enables_mfa(mfa, ident, tenant, clock, admin_db):
    enrollment = await mfa.EnrollTotp(mpb.EnrollTotpRequest(), metadata=tenant.md)
    assert enrollment.otpauth_uri.startswith("otpauth://totp/Givance:")
    parsed = pyotp.parse_uri(enrollment.otpauth_uri)
    assert parsed.secret == enrollment.secret and parsed.issuer == "Givance" and parsed.name == tenant.email
    # Not confirmed yet: a login still gets tokens at once.
    login = await ident.Login(pb.LoginRequest(email=tenant.email, password=PASSWORD))
    assert login.WhichOneof("result") == "tokens"

    totp = pyotp.TOTP(enrollment.secret)
    wrong = await fails(mfa.ConfirmTotp(mpb.ConfirmTotpRequest(code=totp.at(clock.t + 3600)), metadata=tenant.md))
    assert wrong.code() == grpc.StatusCode.PERMISSION_DENIED and error_reason(wrong) == "MFA_CODE_INVALID"

    codes = list((await mfa.ConfirmTotp(mpb.ConfirmTotpRequest(code=totp.at(clock.t)),
                                        metadata=tenant.md)).backup_codes)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(len(c) == 11 and c[5] == "-" for c in codes)
    row = await admin_db.fetchrow("SELECT * FROM identity.user_mfa WHERE user_id = $1", uuid.UUID(tenant.user_id))
    assert row["enabled"] and row["confirmed_at"] is not None and len(row["backup_code_hashes"]) == 10
    assert row["totp_last_step"] == int(clock.t) // 30

    again = await fails(mfa.EnrollTotp(mpb.EnrollTotpRequest(), metadata=tenant.md))
    assert again.code() == grpc.StatusCode.FAILED_PRECONDITION and error_reason(again) == "MFA_ALREADY_ENABLED"
    again = await fails(mfa.ConfirmTotp(mpb.ConfirmTotpRequest(code=totp.at(clock.t + 30)), metadata=tenant.md))
    assert again.code() == grpc.StatusCode.FAILED_PRECONDITION and error_reason(again) == "MFA_ALREADY_ENABLED"
    actions = [e.action for e in await audit_actions(admin_db, tenant)]
    assert actions == ["identity.mfa.verification_failed", "identity.mfa.enabled"]


async def test_confirm_without_enrollment_and_mfa_calls_without_a_token(mfa, tenant):
    e = await fails(mfa.ConfirmTotp(mpb.ConfirmTotpRequest(code="123456"), metadata=tenant.md))
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION and error_reason(e) == "MFA_NOT_ENROLLED"
    e = await fails(mfa.DisableMfa(mpb.DisableMfaRequest(code="123456"), metadata=tenant.md))
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION and error_reason(e) == "MFA_NOT_ENABLED"
    e = await fails(mfa.EnrollTotp(mpb.EnrollTotpRequest()))
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED


# -- the login challenge ------------------------------------------------------------------------


async def test_login_returns_a_challenge_and_verify_mfa_with_totp_issues_tokens(mfa, ident, stubs, tenant, clock):
    totp, _ = await enroll(mfa, tenant, clock)
    login = await ident.Login(pb.LoginRequest(email=tenant.email, password=PASSWORD))
    assert login.WhichOneof("result") == "mfa_challenge"
    token = login.mfa_challenge.challenge_token
    assert token.split(".")[0] == uuid.UUID(tenant.org_id).hex
    assert login.mfa_challenge.expire_time.seconds > time.time()

    clock.advance()
    verified = await ident.VerifyMfa(pb.VerifyMfaRequest(challenge_token=token, code=totp.at(clock.t)))
    assert verified.tokens.user_id == tenant.user_id and verified.tokens.organization_id == tenant.org_id
    assert verified.device_token == "" and perms(verified.tokens.access_token) == ["*"]
    org = await stubs.organizations.GetOrganization(
        opb.GetOrganizationRequest(), metadata=md(verified.tokens.access_token, tenant.org_id))
    assert org.organization.id == tenant.org_id
    # A challenge is single use.
    clock.advance()
    e = await fails(ident.VerifyMfa(pb.VerifyMfaRequest(challenge_token=token, code=totp.at(clock.t))))
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED and error_reason(e) == "MFA_CHALLENGE_INVALID"
    e = await fails(ident.VerifyMfa(pb.VerifyMfaRequest(challenge_token=f"{uuid.UUID(tenant.org_id).hex}.forged",
                                                       code=totp.at(clock.t))))
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED and error_reason(e) == "MFA_CHALLENGE_INVALID"


async def test_a_replayed_totp_code_is_refused(mfa, ident, tenant, clock):
    totp, _ = await enroll(mfa, tenant, clock)
    clock.advance()
    code = totp.at(clock.t)
    await ident.VerifyMfa(pb.VerifyMfaRequest(challenge_token=await challenge(ident, tenant), code=code))
    token = await challenge(ident, tenant)
    e = await fails(ident.VerifyMfa(pb.VerifyMfaRequest(challenge_token=token, code=code)))
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED and error_reason(e) == "MFA_CODE_INVALID"
    # Still inside the drift window a step later: still refused, it was used.
    clock.advance()
    e = await fails(ident.VerifyMfa(pb.VerifyMfaRequest(challenge_token=token, code=code)))
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED and error_reason(e) == "MFA_CODE_INVALID"
    # The confirmation's code is spent too.
    e = await fails(ident.VerifyMfa(pb.VerifyMfaRequest(challenge_token=token, code=totp.at(clock.t - 60))))
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED
    # A fresh code answers the same challenge (three wrong attempts of five so far).
    ok = await ident.VerifyMfa(pb.VerifyMfaRequest(challenge_token=token, code=totp.at(clock.t)))
    assert ok.tokens.access_token


async def test_one_step_of_drift_is_accepted_and_two_are_not(mfa, ident, tenant, clock):
    totp, _ = await enroll(mfa, tenant, clock)
    clock.advance(5 * 30)
    token = await challenge(ident, tenant)
    for drift in (-60, 60):
        e = await fails(ident.VerifyMfa(pb.VerifyMfaRequest(challenge_token=token, code=totp.at(clock.t + drift))))
        assert e.code() == grpc.StatusCode.UNAUTHENTICATED and error_reason(e) == "MFA_CODE_INVALID"
    behind = await ident.VerifyMfa(pb.VerifyMfaRequest(challenge_token=token, code=totp.at(clock.t - 30)))
    assert behind.tokens.access_token
    ahead = await ident.VerifyMfa(pb.VerifyMfaRequest(challenge_token=await challenge(ident, tenant),
                                                      code=totp.at(clock.t + 30)))
    assert ahead.tokens.access_token


async def test_a_backup_code_works_once(mfa, ident, tenant, clock, admin_db):
    _, codes = await enroll(mfa, tenant, clock)
    # Case and the hyphen do not matter.
    first = await ident.VerifyMfa(pb.VerifyMfaRequest(challenge_token=await challenge(ident, tenant),
                                                      code=codes[0].replace("-", "").lower()))
    assert first.tokens.access_token
    row = await admin_db.fetchrow("SELECT backup_code_hashes, backup_codes_used FROM identity.user_mfa "
                                  "WHERE user_id = $1", uuid.UUID(tenant.user_id))
    assert len(row["backup_code_hashes"]) == 9 and len(row["backup_codes_used"]) == 1
    e = await fails(ident.VerifyMfa(pb.VerifyMfaRequest(challenge_token=await challenge(ident, tenant),
                                                       code=codes[0])))
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED and error_reason(e) == "MFA_CODE_INVALID"
    other = await ident.VerifyMfa(pb.VerifyMfaRequest(challenge_token=await challenge(ident, tenant), code=codes[1]))
    assert other.tokens.access_token


async def test_a_challenge_allows_five_attempts_failures_are_audited_and_ten_lock(mfa, ident, tenant, clock,
                                                                                  admin_db):
    totp, _ = await enroll(mfa, tenant, clock)
    clock.advance()
    token = await challenge(ident, tenant)
    for _ in range(5):
        e = await fails(ident.VerifyMfa(pb.VerifyMfaRequest(challenge_token=token, code="000000")))
        assert error_reason(e) == "MFA_CODE_INVALID"
    e = await fails(ident.VerifyMfa(pb.VerifyMfaRequest(challenge_token=token, code=totp.at(clock.t))))
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED and error_reason(e) == "MFA_CHALLENGE_INVALID"
    failed = [a for a in await audit_actions(admin_db, tenant) if a.action == "identity.mfa.verification_failed"]
    assert len(failed) == 5 and {a.actor_id for a in failed} == {tenant.user_id}
    assert {a.resource_id for a in failed} == {tenant.user_id}

    token = await challenge(ident, tenant)
    for _ in range(4):
        await fails(ident.VerifyMfa(pb.VerifyMfaRequest(challenge_token=token, code="AAAAA-AAAAA")))
    e = await fails(ident.VerifyMfa(pb.VerifyMfaRequest(challenge_token=token, code="999999")))
    assert error_reason(e) == "MFA_CODE_INVALID"  # the tenth wrong code in a row: code checks lock
    e = await fails(ident.VerifyMfa(pb.VerifyMfaRequest(challenge_token=await challenge(ident, tenant),
                                                       code=totp.at(clock.t))))
    assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and error_reason(e) == "MFA_LOCKED"
    e = await fails(mfa.RegenerateBackupCodes(mpb.RegenerateBackupCodesRequest(code=totp.at(clock.t)),
                                             metadata=tenant.md))
    assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


# -- trusted devices ----------------------------------------------------------------------------


async def test_a_trusted_device_skips_the_challenge_until_revoked(mfa, ident, tenant, other_tenant, clock, admin_db):
    totp, _ = await enroll(mfa, tenant, clock)
    clock.advance()
    verified = await ident.VerifyMfa(pb.VerifyMfaRequest(
        challenge_token=await challenge(ident, tenant), code=totp.at(clock.t), trust_device=True,
        device_name="  Work laptop "))
    device_token = verified.device_token
    assert device_token and verified.tokens.access_token

    skipped = await ident.Login(pb.LoginRequest(email=tenant.email, password=PASSWORD, device_token=device_token))
    assert skipped.WhichOneof("result") == "tokens" and perms(skipped.tokens.access_token) == ["*"]
    await challenge(ident, tenant, device_token=device_token + "x")  # not a device of this user
    await challenge(ident, tenant)

    devices = (await mfa.ListTrustedDevices(mpb.ListTrustedDevicesRequest(), metadata=tenant.md)).devices
    assert len(devices) == 1
    device = devices[0]
    assert device.name == "Work laptop" and device.ip_address == "127.0.0.1" and USER_AGENT in device.user_agent
    assert 29 * 86400 < device.expire_time.seconds - device.create_time.seconds <= 30 * 86400 + 60
    assert device.last_use_time.seconds >= device.create_time.seconds

    # Another user's device: not found, and it keeps working for its owner.
    assert not (await mfa.ListTrustedDevices(mpb.ListTrustedDevicesRequest(), metadata=other_tenant.md)).devices
    e = await fails(mfa.RevokeTrustedDevice(mpb.RevokeTrustedDeviceRequest(id=device.id), metadata=other_tenant.md))
    assert e.code() == grpc.StatusCode.NOT_FOUND
    e = await fails(mfa.RevokeTrustedDevice(mpb.RevokeTrustedDeviceRequest(id=str(uuid.uuid4())), metadata=tenant.md))
    assert e.code() == grpc.StatusCode.NOT_FOUND
    again = await ident.Login(pb.LoginRequest(email=tenant.email, password=PASSWORD, device_token=device_token))
    assert again.WhichOneof("result") == "tokens"

    await mfa.RevokeTrustedDevice(mpb.RevokeTrustedDeviceRequest(id=device.id), metadata=tenant.md)
    await challenge(ident, tenant, device_token=device_token)
    assert not (await mfa.ListTrustedDevices(mpb.ListTrustedDevicesRequest(), metadata=tenant.md)).devices
    e = await fails(mfa.RevokeTrustedDevice(mpb.RevokeTrustedDeviceRequest(id=device.id), metadata=tenant.md))
    assert e.code() == grpc.StatusCode.NOT_FOUND

    trail = {e.action: e for e in await audit_actions(admin_db, tenant)}
    assert trail["identity.trusted_device.created"].resource_id == device.id
    assert trail["identity.trusted_device.created"].actor_id == tenant.user_id
    assert trail["identity.trusted_device.revoked"].resource_id == device.id


# -- backup codes and disabling -----------------------------------------------------------------


async def test_regenerated_backup_codes_replace_the_old_and_disable_needs_a_code(mfa, ident, tenant, clock,
                                                                                admin_db):
    totp, old_codes = await enroll(mfa, tenant, clock)
    e = await fails(mfa.RegenerateBackupCodes(mpb.RegenerateBackupCodesRequest(code="000000"), metadata=tenant.md))
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED and error_reason(e) == "MFA_CODE_INVALID"
    clock.advance()
    new_codes = list((await mfa.RegenerateBackupCodes(
        mpb.RegenerateBackupCodesRequest(code=totp.at(clock.t)), metadata=tenant.md)).backup_codes)
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)
    e = await fails(ident.VerifyMfa(pb.VerifyMfaRequest(challenge_token=await challenge(ident, tenant),
                                                       code=old_codes[0])))
    assert error_reason(e) == "MFA_CODE_INVALID"

    clock.advance()
    verified = await ident.VerifyMfa(pb.VerifyMfaRequest(challenge_token=await challenge(ident, tenant),
                                                         code=totp.at(clock.t), trust_device=True))
    e = await fails(mfa.DisableMfa(mpb.DisableMfaRequest(code=old_codes[1]), metadata=tenant.md))
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED
    await mfa.DisableMfa(mpb.DisableMfaRequest(code=new_codes[0]), metadata=tenant.md)
    assert await admin_db.fetchval("SELECT count(*) FROM identity.user_mfa WHERE user_id = $1",
                                   uuid.UUID(tenant.user_id)) == 0
    # Disabling also forgets the trusted devices (a later enrollment starts afresh).
    assert not (await mfa.ListTrustedDevices(mpb.ListTrustedDevicesRequest(), metadata=tenant.md)).devices
    login = await ident.Login(pb.LoginRequest(email=tenant.email, password=PASSWORD,
                                              device_token=verified.device_token))
    assert login.WhichOneof("result") == "tokens"
    actions = [e.action for e in await audit_actions(admin_db, tenant)]
    assert actions.count("identity.mfa.enabled") == 1 and actions.count("identity.mfa.backup_codes_regenerated") == 1
    assert actions.count("identity.mfa.disabled") == 1 and actions.count("identity.trusted_device.created") == 1


# -- the organization's policy ------------------------------------------------------------------


async def test_organization_policy_limits_the_unenrolled_and_challenges_the_enrolled(mfa, ident, stubs, tenant,
                                                                                      clock, admin_db):
    await admin_db.execute("UPDATE identity.organizations SET mfa_required = true WHERE id = $1",
                           uuid.UUID(tenant.org_id))
    login = await ident.Login(pb.LoginRequest(email=tenant.email, password=PASSWORD))
    assert login.WhichOneof("result") == "tokens"
    limited = login.tokens
    assert perms(limited.access_token) == ["identity.self"]
    e = await fails(stubs.organizations.GetOrganization(opb.GetOrganizationRequest(),
                                                       metadata=md(limited.access_token, tenant.org_id)))
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED
    # A refresh does not widen it.
    refreshed = (await ident.RefreshToken(pb.RefreshTokenRequest(refresh_token=limited.refresh_token))).tokens
    assert perms(refreshed.access_token) == ["identity.self"]

    # The limited token is enough to enroll; then the login asks for the second factor.
    totp, codes = await enroll(mfa, tenant, clock, metadata=md(refreshed.access_token, tenant.org_id))
    clock.advance()
    verified = await ident.VerifyMfa(pb.VerifyMfaRequest(challenge_token=await challenge(ident, tenant),
                                                         code=totp.at(clock.t)))
    assert perms(verified.tokens.access_token) == ["*"]
    await stubs.organizations.GetOrganization(opb.GetOrganizationRequest(),
                                              metadata=md(verified.tokens.access_token, tenant.org_id))

    e = await fails(mfa.DisableMfa(mpb.DisableMfaRequest(code=codes[0]), metadata=tenant.md))
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION and error_reason(e) == "MFA_REQUIRED_BY_ORGANIZATION"
    row = await admin_db.fetchrow("SELECT enabled, backup_code_hashes FROM identity.user_mfa WHERE user_id = $1",
                                  uuid.UUID(tenant.user_id))
    assert row["enabled"] and len(row["backup_code_hashes"]) == 10  # the code was not spent


# -- bad input ----------------------------------------------------------------------------------


async def _mfa_state(admin_db, tenant: Tenant) -> tuple:
    return tuple(await admin_db.fetchrow(
        "SELECT (SELECT string_agg(t::text, '|') FROM identity.user_mfa t WHERE user_id = $1), "
        "(SELECT count(*) FROM identity.trusted_devices WHERE user_id = $1), "
        "(SELECT string_agg(c::text, '|') FROM identity.mfa_challenges c WHERE user_id = $1), "
        "(SELECT count(*) FROM identity.outbox WHERE tenant_id = $2)",
        uuid.UUID(tenant.user_id), uuid.UUID(tenant.org_id)))


async def test_bad_input_on_every_rpc_names_the_field_and_writes_nothing(mfa, ident, tenant, clock, admin_db):
    totp, _ = await enroll(mfa, tenant, clock)
    token = await challenge(ident, tenant)
    before = await _mfa_state(admin_db, tenant)

    cases = [
        (mfa.ConfirmTotp(mpb.ConfirmTotpRequest(code=""), metadata=tenant.md), {"code"}),
        (mfa.ConfirmTotp(mpb.ConfirmTotpRequest(code="12345"), metadata=tenant.md), {"code"}),
        (mfa.ConfirmTotp(mpb.ConfirmTotpRequest(code="ABCDE-FGHIJ"), metadata=tenant.md), {"code"}),
        (mfa.DisableMfa(mpb.DisableMfaRequest(code=""), metadata=tenant.md), {"code"}),
        (mfa.DisableMfa(mpb.DisableMfaRequest(code="not a code!"), metadata=tenant.md), {"code"}),
        (mfa.RegenerateBackupCodes(mpb.RegenerateBackupCodesRequest(code="١٢٣٤٥٦"), metadata=tenant.md), {"code"}),
        (mfa.RevokeTrustedDevice(mpb.RevokeTrustedDeviceRequest(id=""), metadata=tenant.md), {"id"}),
        (mfa.RevokeTrustedDevice(mpb.RevokeTrustedDeviceRequest(id="nope"), metadata=tenant.md), {"id"}),
        (ident.VerifyMfa(pb.VerifyMfaRequest()), {"challenge_token", "code"}),
        (ident.VerifyMfa(pb.VerifyMfaRequest(challenge_token=token, code="12", trust_device=True,
                                             device_name="x" * 101)), {"code", "device_name"}),
        (ident.VerifyMfa(pb.VerifyMfaRequest(challenge_token="a" * 600, code="123456")), {"challenge_token"}),
        (ident.VerifyMfa(pb.VerifyMfaRequest(challenge_token=token, code="123456", device_name="bad\nname")),
         {"device_name"}),
    ]
    for call, fields in cases:
        e = await fails(call)
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, fields
        assert set(field_violations(e)) == fields

    assert await _mfa_state(admin_db, tenant) == before
    # The challenge counted none of it.
    clock.advance()
    assert (await ident.VerifyMfa(pb.VerifyMfaRequest(challenge_token=token, code=totp.at(clock.t)))).tokens


# -- secrets at rest ----------------------------------------------------------------------------


async def test_totp_secret_backup_codes_and_tokens_are_not_stored_in_clear(mfa, ident, tenant, clock, admin_db):
    enrollment = await mfa.EnrollTotp(mpb.EnrollTotpRequest(), metadata=tenant.md)
    totp = pyotp.TOTP(enrollment.secret)
    codes = list((await mfa.ConfirmTotp(mpb.ConfirmTotpRequest(code=totp.at(clock.t)),
                                        metadata=tenant.md)).backup_codes)
    token = await challenge(ident, tenant)
    await challenge(ident, tenant)  # one left unanswered
    clock.advance()
    verified = await ident.VerifyMfa(pb.VerifyMfaRequest(challenge_token=token, code=totp.at(clock.t),
                                                         trust_device=True, device_name="Phone"))
    await ident.VerifyMfa(pb.VerifyMfaRequest(challenge_token=await challenge(ident, tenant), code=codes[0]))

    dump = await admin_db.fetchval(
        "SELECT concat_ws('|', "
        "(SELECT string_agg(t::text, '|') FROM identity.user_mfa t), "
        "(SELECT string_agg(t::text, '|') FROM identity.trusted_devices t), "
        "(SELECT string_agg(t::text, '|') FROM identity.mfa_challenges t))")
    assert dump and tenant.user_id in dump
    secret = enrollment.secret
    assert secret not in dump and secret.lower() not in dump
    for code in codes:
        assert code not in dump and code.replace("-", "") not in dump and code.replace("-", "").lower() not in dump
    assert token.split(".", 1)[1] not in dump and verified.device_token not in dump
    sealed = await admin_db.fetchval("SELECT totp_secret_sealed FROM identity.user_mfa WHERE user_id = $1",
                                     uuid.UUID(tenant.user_id))
    assert sealed.startswith("v1.")
