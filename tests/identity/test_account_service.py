"""AccountService: email and phone verification, password reset and change, password rules,
login throttling, KYC, and what the identity schema holds in clear."""

import json
import uuid

import grpc
import jwt
import pytest
from cryptography.exceptions import InvalidTag
from givance.events.v1 import audit_events_pb2, identity_events_pb2
from givance.identity.v1 import account_service_pb2 as pb
from givance.identity.v1 import identity_service_pb2 as id_pb
from google.type import date_pb2

from chassis import events
from services.identity.crypto import Keyring
from services.identity.domain import throttle
from services.identity.settings import IdentitySettings
from tests.conftest import PASSWORD
from tests.helpers import comms_opens, error_reason, fails, field_violations

NEW_PASSWORD = "violet kettle under the stairs"


@pytest.fixture
def accounts(stubs):
    return stubs.accounts


@pytest.fixture(autouse=True)
async def _forget_address_failures(admin_db):
    """Every test here signs in from 127.0.0.1: its failures must not lock the address for the next."""
    await admin_db.execute("DELETE FROM identity.login_throttle WHERE key LIKE 'address:%'")
    await admin_db.execute("DELETE FROM identity.request_limits")  # the tests share one phone number
    yield
    await admin_db.execute("DELETE FROM identity.login_throttle WHERE key LIKE 'address:%'")
    await admin_db.execute("DELETE FROM identity.request_limits")  # the tests share one phone number


def _md(token: str, org_id: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"), ("x-tenant-id", org_id))


async def _events(admin_db, routing_key: str, aggregate_id: str, message_type):
    """The payloads of the outbox events of a type for an aggregate, oldest first (with their envelopes)."""
    rows = await admin_db.fetch(
        "SELECT body FROM identity.outbox WHERE routing_key = $1 AND aggregate_id = $2 ORDER BY id",
        routing_key, aggregate_id)
    out = []
    for row in rows:
        env = events.parse(row["body"])
        out.append((env, events.unpack(env, message_type)))
    return out


async def _last_event(admin_db, routing_key: str, aggregate_id: str, message_type):
    found = await _events(admin_db, routing_key, aggregate_id, message_type)
    assert found, f"no {routing_key} event for {aggregate_id}"
    return found[-1]


async def _audits(admin_db, resource_id: str) -> list[tuple[str, audit_events_pb2.AuditRecordedEvent]]:
    """(tenant, audit event) of the identity audit records about a resource."""
    found = await _events(admin_db, "identity.audit.recorded", resource_id, audit_events_pb2.AuditRecordedEvent)
    return [(env.tenant_id, ev) for env, ev in found]


def _link(event, field: str) -> str:
    """The link or code an event carries sealed for comms (never in clear), opened as comms does."""
    env, payload = event
    assert not getattr(payload, field.removeprefix("sealed_"))
    return comms_opens(env.type, env.aggregate_id, getattr(payload, field))


def _token_of(link: str) -> str:
    return link.split("token=", 1)[1]


async def _login(stubs, email: str, password: str, organization_id: str = ""):
    return await stubs.identity.Login(id_pb.LoginRequest(email=email, password=password,
                                                         organization_id=organization_id))


async def _add_member(admin_db, user_id: str, org_id: str, role: str = "staff") -> None:
    await admin_db.execute(
        "INSERT INTO identity.user_organizations (user_id, organization_id, role, status, joined_at) "
        "VALUES ($1, $2, $3, 'active', now())", uuid.UUID(user_id), uuid.UUID(org_id), role)


async def _written(admin_db, user_id: str) -> tuple:
    """What a request for this user could have written: the user row, their tokens, the outbox."""
    uid = uuid.UUID(user_id)
    return (
        await admin_db.fetchval("SELECT t::text FROM identity.users t WHERE id = $1", uid),
        await admin_db.fetchval("SELECT count(*) FROM identity.user_tokens WHERE user_id = $1", uid),
        await admin_db.fetchval("SELECT count(*) FROM identity.outbox"),
    )


def _kyc(**kw) -> pb.Kyc:
    fields = dict(date_of_birth=date_pb2.Date(year=1985, month=6, day=15), national_id="123-45-6789",
                  national_id_type="ssn", address="1 Main Street", city="Springfield", state="IL",
                  postal_code="62701", country="US", emergency_contact_name="Grace Hopper",
                  emergency_contact_phone="(650) 253-0000", emergency_contact_relation="sister",
                  id_document_url="https://files.example.org/id.pdf")
    fields.update(kw)
    return pb.Kyc(**fields)


# -- account ------------------------------------------------------------------------------------


async def test_get_account_is_the_callers_own(accounts, tenant):
    account = (await accounts.GetAccount(pb.GetAccountRequest(), metadata=tenant.md)).account
    assert account.id == tenant.user_id and account.email == tenant.email
    assert not account.email_verified and not account.phone_verified and not account.mfa_enabled
    assert account.default_organization_id == tenant.org_id
    assert account.kyc.status == pb.KYC_STATUS_UNSPECIFIED and account.kyc.national_id == ""
    e = await fails(accounts.GetAccount(pb.GetAccountRequest()))
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED


# -- email verification -------------------------------------------------------------------------


async def test_email_verification_link_is_single_use(accounts, tenant, admin_db):
    await accounts.RequestEmailVerification(pb.RequestEmailVerificationRequest(), metadata=tenant.md)
    env, event = await _last_event(admin_db, "identity.user.email_verification_requested", tenant.user_id,
                                   identity_events_pb2.EmailVerificationRequestedEvent)
    assert env.tenant_id == tenant.org_id and event.email == tenant.email and event.user_id == tenant.user_id
    link = _link((env, event), "sealed_verify_link")
    assert link.startswith(f"{IdentitySettings().public_url}/verify-email?token=")
    hours = (event.expire_time.ToSeconds() - env.occur_time.ToSeconds()) / 3600
    assert 23.9 < hours <= 24
    token = _token_of(link)
    await accounts.VerifyEmail(pb.VerifyEmailRequest(token=token))
    account = (await accounts.GetAccount(pb.GetAccountRequest(), metadata=tenant.md)).account
    assert account.email_verified
    e = await fails(accounts.VerifyEmail(pb.VerifyEmailRequest(token=token)))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "token" in field_violations(e)
    e = await fails(accounts.RequestEmailVerification(pb.RequestEmailVerificationRequest(), metadata=tenant.md))
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION and error_reason(e) == "EMAIL_ALREADY_VERIFIED"


async def test_email_verification_link_expires_and_a_new_one_supersedes_it(accounts, tenant, admin_db):
    key = "identity.user.email_verification_requested"
    await accounts.RequestEmailVerification(pb.RequestEmailVerificationRequest(), metadata=tenant.md)
    first = _link(await _last_event(admin_db, key, tenant.user_id, identity_events_pb2.EmailVerificationRequestedEvent),
                  "sealed_verify_link")
    await accounts.RequestEmailVerification(pb.RequestEmailVerificationRequest(), metadata=tenant.md)
    second = _link(await _last_event(admin_db, key, tenant.user_id,
                                     identity_events_pb2.EmailVerificationRequestedEvent), "sealed_verify_link")
    assert first != second
    e = await fails(accounts.VerifyEmail(pb.VerifyEmailRequest(token=_token_of(first))))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "token" in field_violations(e)
    await admin_db.execute("UPDATE identity.user_tokens SET expires_at = now() - interval '1 second' "
                           "WHERE user_id = $1", uuid.UUID(tenant.user_id))
    e = await fails(accounts.VerifyEmail(pb.VerifyEmailRequest(token=_token_of(second))))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "token" in field_violations(e)
    account = (await accounts.GetAccount(pb.GetAccountRequest(), metadata=tenant.md)).account
    assert not account.email_verified


@pytest.mark.parametrize("token", ["", "not a token!", "x" * 500, "A" * 43])
async def test_verify_email_bad_tokens_name_the_field_and_write_nothing(accounts, tenant, admin_db, token):
    before = await _written(admin_db, tenant.user_id)
    e = await fails(accounts.VerifyEmail(pb.VerifyEmailRequest(token=token)))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "token" in field_violations(e)
    assert await _written(admin_db, tenant.user_id) == before


# -- password reset -----------------------------------------------------------------------------


async def _reset_link(accounts, admin_db, tenant) -> str:
    await accounts.RequestPasswordReset(pb.RequestPasswordResetRequest(email=tenant.email.upper()))
    env, event = await _last_event(admin_db, "identity.user.password_reset_requested", tenant.user_id,
                                   identity_events_pb2.PasswordResetRequestedEvent)
    assert env.tenant_id == tenant.org_id and event.email == tenant.email
    link = _link((env, event), "sealed_reset_link")
    assert link.startswith(f"{IdentitySettings().public_url}/reset-password?token=")
    minutes = (event.expire_time.ToSeconds() - env.occur_time.ToSeconds()) / 60
    assert 59 < minutes <= 60
    return link


async def test_password_reset_sets_the_password_and_ends_every_session(accounts, stubs, tenant, other_tenant,
                                                                       admin_db):
    # the user has a second session, and a session in another organization they belong to
    await _add_member(admin_db, tenant.user_id, other_tenant.org_id)
    second = (await _login(stubs, tenant.email, PASSWORD)).tokens
    elsewhere = (await _login(stubs, tenant.email, PASSWORD, other_tenant.org_id)).tokens
    assert elsewhere.organization_id == other_tenant.org_id
    link = await _reset_link(accounts, admin_db, tenant)
    await accounts.ResetPassword(pb.ResetPasswordRequest(token=_token_of(link), new_password=NEW_PASSWORD))
    for refresh in (tenant.refresh_token, second.refresh_token, elsewhere.refresh_token):
        e = await fails(stubs.identity.RefreshToken(id_pb.RefreshTokenRequest(refresh_token=refresh)))
        assert e.code() == grpc.StatusCode.UNAUTHENTICATED
    assert (await fails(_login(stubs, tenant.email, PASSWORD))).code() == grpc.StatusCode.UNAUTHENTICATED
    assert (await _login(stubs, tenant.email, NEW_PASSWORD)).tokens.access_token
    # the other session belongs to the user, not to the other organization's owner: theirs still works
    ok = await stubs.identity.RefreshToken(id_pb.RefreshTokenRequest(refresh_token=other_tenant.refresh_token))
    assert ok.tokens.user_id == other_tenant.user_id
    audits = [(t, a) for t, a in await _audits(admin_db, tenant.user_id) if a.action == "identity.user.password_reset"]
    assert len(audits) == 1 and audits[0][0] == tenant.org_id and audits[0][1].actor_id == tenant.user_id
    assert audits[0][1].after["sessions_ended"] >= 3


async def test_password_reset_link_is_single_use_and_expires(accounts, stubs, tenant, admin_db):
    token = _token_of(await _reset_link(accounts, admin_db, tenant))
    await accounts.ResetPassword(pb.ResetPasswordRequest(token=token, new_password=NEW_PASSWORD))
    e = await fails(accounts.ResetPassword(pb.ResetPasswordRequest(token=token, new_password="another fine phrase")))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "token" in field_violations(e)
    token = _token_of(await _reset_link(accounts, admin_db, tenant))
    await admin_db.execute("UPDATE identity.user_tokens SET expires_at = now() - interval '1 second' "
                           "WHERE user_id = $1 AND purpose = 'password_reset'", uuid.UUID(tenant.user_id))
    e = await fails(accounts.ResetPassword(pb.ResetPasswordRequest(token=token, new_password="another fine phrase")))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "token" in field_violations(e)
    assert (await _login(stubs, tenant.email, NEW_PASSWORD)).tokens.access_token


async def test_password_reset_answers_alike_for_an_unknown_email_and_sends_nothing(accounts, admin_db):
    count = "SELECT count(*) FROM identity.outbox WHERE routing_key = 'identity.user.password_reset_requested'"
    before = await admin_db.fetchval(count)
    resp = await accounts.RequestPasswordReset(
        pb.RequestPasswordResetRequest(email=f"nobody-{uuid.uuid4().hex[:8]}@example.org"))
    assert resp == pb.RequestPasswordResetResponse()
    assert await admin_db.fetchval(count) == before


@pytest.mark.parametrize("email", ["", "not-an-email", "a@b"])
async def test_password_reset_request_bad_email(accounts, admin_db, email):
    before = await admin_db.fetchval("SELECT count(*) FROM identity.outbox")
    e = await fails(accounts.RequestPasswordReset(pb.RequestPasswordResetRequest(email=email)))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "email" in field_violations(e)
    assert await admin_db.fetchval("SELECT count(*) FROM identity.outbox") == before


async def test_reset_password_bad_input_writes_nothing_and_keeps_the_link(accounts, stubs, tenant, admin_db):
    token = _token_of(await _reset_link(accounts, admin_db, tenant))
    before = await _written(admin_db, tenant.user_id)
    e = await fails(accounts.ResetPassword(pb.ResetPasswordRequest()))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {"token", "new_password"} <= set(field_violations(e))
    for weak in ("short", "password1234", tenant.email, "Test User 1999"):
        e = await fails(accounts.ResetPassword(pb.ResetPasswordRequest(token=token, new_password=weak)))
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "new_password" in field_violations(e), weak
    assert await _written(admin_db, tenant.user_id) == before
    await accounts.ResetPassword(pb.ResetPasswordRequest(token=token, new_password=NEW_PASSWORD))
    assert (await _login(stubs, tenant.email, NEW_PASSWORD)).tokens.access_token


# -- password change ----------------------------------------------------------------------------


async def test_change_password_needs_the_current_one_and_ends_the_other_sessions(accounts, stubs, tenant, admin_db):
    other = (await _login(stubs, tenant.email, PASSWORD)).tokens
    e = await fails(accounts.ChangePassword(pb.ChangePasswordRequest(
        current_password="not my password at all", new_password=NEW_PASSWORD), metadata=tenant.md))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "current_password" in field_violations(e)
    await accounts.ChangePassword(pb.ChangePasswordRequest(current_password=PASSWORD, new_password=NEW_PASSWORD),
                                  metadata=tenant.md)
    # the caller's own session (the sign-up's) goes on; the other one has ended
    ok = await stubs.identity.RefreshToken(id_pb.RefreshTokenRequest(refresh_token=tenant.refresh_token))
    assert ok.tokens.user_id == tenant.user_id
    e = await fails(stubs.identity.RefreshToken(id_pb.RefreshTokenRequest(refresh_token=other.refresh_token)))
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED
    assert (await fails(_login(stubs, tenant.email, PASSWORD))).code() == grpc.StatusCode.UNAUTHENTICATED
    assert (await _login(stubs, tenant.email, NEW_PASSWORD)).tokens.access_token
    actions = [a.action for _, a in await _audits(admin_db, tenant.user_id)]
    assert "identity.user.password_changed" in actions and "identity.user.password_change_failed" in actions


@pytest.mark.parametrize(("current", "new", "field"), [
    ("", "", "current_password"),
    (PASSWORD, "", "new_password"),
    (PASSWORD, "tooshort", "new_password"),
    (PASSWORD, "x" * 257, "new_password"),
    (PASSWORD, "qwertyuiop123", "new_password"),
    (PASSWORD, "Password!!2024", "new_password"),
    (PASSWORD, "aaaaaaaaaaaaaaaa", "new_password"),
    (PASSWORD, "Test User 2024", "new_password"),
    (PASSWORD, PASSWORD, "new_password"),
])
async def test_change_password_bad_input(accounts, tenant, admin_db, current, new, field):
    before = await _written(admin_db, tenant.user_id)
    e = await fails(accounts.ChangePassword(pb.ChangePasswordRequest(current_password=current, new_password=new),
                                           metadata=tenant.md))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and field in field_violations(e)
    assert await _written(admin_db, tenant.user_id) == before


async def test_change_password_refuses_the_users_own_email(accounts, tenant):
    e = await fails(accounts.ChangePassword(pb.ChangePasswordRequest(current_password=PASSWORD,
                                                                    new_password=tenant.email), metadata=tenant.md))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "new_password" in field_violations(e)


# -- password rules at sign-up ------------------------------------------------------------------


@pytest.mark.parametrize("password", [
    "short", "x" * 257, "password1234", "123456789012", "1qaz2wsx3edc", "iloveyou1234", "abcdefghijkl",
    "abcabcabcabc", "Givance2024!!", "{email}", "Ada Lovelace 1815",
])
async def test_sign_up_refuses_short_long_common_and_personal_passwords(stubs, admin_db, password):
    email = f"ada.lovelace-{uuid.uuid4().hex[:6]}@example.org"
    before = await admin_db.fetchval("SELECT count(*) FROM identity.users")
    e = await fails(stubs.identity.SignUp(id_pb.SignUpRequest(
        email=email, password=password.format(email=email), first_name="Ada", last_name="Lovelace",
        organization_name="Rules Org")))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "password" in field_violations(e)
    assert await admin_db.fetchval("SELECT count(*) FROM identity.users") == before


async def test_sign_up_takes_a_long_uncommon_phrase_without_composition_rules(stubs):
    email = f"phrase-{uuid.uuid4().hex[:6]}@example.org"
    resp = await stubs.identity.SignUp(id_pb.SignUpRequest(email=email, password="all lowercase and no digits",
                                                           organization_name="Phrase Org"))
    assert resp.tokens.access_token


# -- phone verification -------------------------------------------------------------------------


async def _phone_code(accounts, admin_db, tenant, phone: str = "+1 650-253-0000") -> tuple[str, str]:
    resp = await accounts.RequestPhoneVerification(pb.RequestPhoneVerificationRequest(phone=phone), metadata=tenant.md)
    env, event = await _last_event(admin_db, "identity.user.phone_verification_requested", tenant.user_id,
                                   identity_events_pb2.PhoneVerificationRequestedEvent)
    assert env.tenant_id == tenant.org_id and event.expire_time == resp.expire_time
    assert 9 < (event.expire_time.ToSeconds() - env.occur_time.ToSeconds()) / 60 <= 10
    code = _link((env, event), "sealed_code")
    assert len(code) == 6 and code.isdigit()
    return event.phone, code


async def test_phone_verification_stores_e164_and_verifies(accounts, tenant, admin_db):
    phone, code = await _phone_code(accounts, admin_db, tenant, "+1 (650) 253-0000")
    assert phone == "+16502530000"
    account = (await accounts.VerifyPhone(pb.VerifyPhoneRequest(code=code), metadata=tenant.md)).account
    assert account.phone == "+16502530000" and account.phone_verified
    row = await admin_db.fetchrow("SELECT phone, phone_verified_at FROM identity.users WHERE id = $1",
                                  uuid.UUID(tenant.user_id))
    assert row["phone"] == "+16502530000" and row["phone_verified_at"] is not None
    e = await fails(accounts.VerifyPhone(pb.VerifyPhoneRequest(code=code), metadata=tenant.md))
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION  # single use


async def test_phone_code_allows_five_attempts(accounts, tenant, admin_db):
    _, code = await _phone_code(accounts, admin_db, tenant)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(4):
        e = await fails(accounts.VerifyPhone(pb.VerifyPhoneRequest(code=wrong), metadata=tenant.md))
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "code" in field_violations(e)
    e = await fails(accounts.VerifyPhone(pb.VerifyPhoneRequest(code=wrong), metadata=tenant.md))
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(e) == "PHONE_CODE_ATTEMPTS_EXHAUSTED"
    e = await fails(accounts.VerifyPhone(pb.VerifyPhoneRequest(code=code), metadata=tenant.md))
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION  # the right code comes too late
    account = (await accounts.GetAccount(pb.GetAccountRequest(), metadata=tenant.md)).account
    assert not account.phone_verified and account.phone == ""


async def test_phone_code_expires_and_a_new_one_supersedes_it(accounts, tenant, admin_db):
    _, first = await _phone_code(accounts, admin_db, tenant)
    _, second = await _phone_code(accounts, admin_db, tenant, "+44 20 7946 0958")
    if first != second:
        e = await fails(accounts.VerifyPhone(pb.VerifyPhoneRequest(code=first), metadata=tenant.md))
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    await admin_db.execute("UPDATE identity.user_tokens SET expires_at = now() - interval '1 second' "
                           "WHERE user_id = $1 AND purpose = 'phone_verification'", uuid.UUID(tenant.user_id))
    e = await fails(accounts.VerifyPhone(pb.VerifyPhoneRequest(code=second), metadata=tenant.md))
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION and error_reason(e) == "PHONE_CODE_EXPIRED"


@pytest.mark.parametrize("phone", ["", "12", "not a phone", "(650) 253-0000", "+1 000 000 0000", "+" + "9" * 40])
async def test_request_phone_verification_bad_input(accounts, tenant, admin_db, phone):
    before = await _written(admin_db, tenant.user_id)
    e = await fails(accounts.RequestPhoneVerification(pb.RequestPhoneVerificationRequest(phone=phone),
                                                     metadata=tenant.md))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "phone" in field_violations(e)
    assert await _written(admin_db, tenant.user_id) == before


@pytest.mark.parametrize("code", ["", "12345", "1234567", "12a456"])
async def test_verify_phone_bad_input(accounts, tenant, admin_db, code):
    await _phone_code(accounts, admin_db, tenant)
    before = await admin_db.fetchval("SELECT attempts FROM identity.user_tokens WHERE user_id = $1 AND used_at IS NULL",
                                     uuid.UUID(tenant.user_id))
    e = await fails(accounts.VerifyPhone(pb.VerifyPhoneRequest(code=code), metadata=tenant.md))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "code" in field_violations(e)
    after = await admin_db.fetchval("SELECT attempts FROM identity.user_tokens WHERE user_id = $1 AND used_at IS NULL",
                                    uuid.UUID(tenant.user_id))
    assert before == after == 0


# -- login throttling ---------------------------------------------------------------------------


def _identity_passwords(identity_host):
    return next(r.servicer for r in identity_host.registrations
                if r.full_name == "givance.identity.v1.IdentityService").deps.passwords


async def test_repeated_failures_lock_the_account_with_growing_back_off(stubs, tenant, admin_db):
    key = throttle.account_key(tenant.email)
    for n in range(1, 8):
        e = await fails(_login(stubs, tenant.email, "not the password, no"))
        assert e.code() == grpc.StatusCode.UNAUTHENTICATED
        row = await admin_db.fetchrow(
            "SELECT failures, extract(epoch FROM locked_until - last_failure_at) AS lock FROM identity.login_throttle "
            "WHERE key = $1", key)
        assert row["failures"] == n
        assert row["lock"] == (None if n < 5 else 2 ** (n - 5))
    # locked: the right password is refused, with the same answer
    await admin_db.execute("UPDATE identity.login_throttle SET locked_until = now() + interval '1 hour' "
                           "WHERE key = $1", key)
    e = await fails(_login(stubs, tenant.email, PASSWORD))
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED and e.details() == "invalid email, password or organization"
    # the lock runs out: the right password gets in and the account's count starts again
    await admin_db.execute("UPDATE identity.login_throttle SET locked_until = now() - interval '1 second' "
                           "WHERE key = $1", key)
    assert (await _login(stubs, tenant.email, PASSWORD)).tokens.access_token
    assert await admin_db.fetchval("SELECT count(*) FROM identity.login_throttle WHERE key = $1", key) == 0


async def test_back_off_is_capped_at_fifteen_minutes(stubs, admin_db):
    email = f"capped-{uuid.uuid4().hex[:8]}@example.org"
    key = throttle.account_key(email)
    await admin_db.execute("INSERT INTO identity.login_throttle (key, failures, last_failure_at) "
                           "VALUES ($1, 29, now())", key)
    await fails(_login(stubs, email, "whatever it is here"))
    row = await admin_db.fetchrow("SELECT failures, extract(epoch FROM locked_until - last_failure_at) AS lock "
                                  "FROM identity.login_throttle WHERE key = $1", key)
    assert row["failures"] == 30 and row["lock"] == 15 * 60


async def test_success_resets_the_accounts_count(stubs, tenant, admin_db):
    for _ in range(4):
        await fails(_login(stubs, tenant.email, "not the password, no"))
    assert (await _login(stubs, tenant.email, PASSWORD)).tokens.access_token
    for _ in range(4):
        await fails(_login(stubs, tenant.email, "not the password, no"))
    # 8 failures in all, but never 5 since the success: not locked
    assert (await _login(stubs, tenant.email, PASSWORD)).tokens.access_token


async def test_unknown_emails_are_throttled_too_and_reveal_nothing(stubs, admin_db):
    ghost = f"ghost-{uuid.uuid4().hex[:8]}@example.org"
    for _ in range(5):
        await fails(_login(stubs, ghost, "some password here"))
    row = await admin_db.fetchrow("SELECT failures, locked_until > now() AS locked FROM identity.login_throttle "
                                  "WHERE key = $1", throttle.account_key(ghost.upper()))
    assert row["failures"] == 5 and row["locked"]
    # the table holds a hash of the email, not the email
    keys = await admin_db.fetchval("SELECT string_agg(key, '|') FROM identity.login_throttle")
    assert ghost not in keys


async def test_locked_unknown_and_wrong_password_answer_alike(stubs, tenant, other_tenant, admin_db,
                                                              identity_host, monkeypatch):
    await admin_db.execute("INSERT INTO identity.login_throttle (key, failures, last_failure_at, locked_until) "
                           "VALUES ($1, 9, now(), now() + interval '1 hour')", throttle.account_key(other_tenant.email))
    handler = _identity_passwords(identity_host)
    verified: list[str] = []
    real_verify = handler.verify

    async def counting_verify(password_hash, password):
        verified.append(password_hash)
        return await real_verify(password_hash, password)

    monkeypatch.setattr(handler, "verify", counting_verify)
    errors = [
        await fails(_login(stubs, tenant.email, "wrong password, really")),
        await fails(_login(stubs, f"ghost-{uuid.uuid4().hex[:8]}@example.org", PASSWORD)),
        await fails(_login(stubs, other_tenant.email, PASSWORD)),  # locked, right password
    ]
    assert {e.code() for e in errors} == {grpc.StatusCode.UNAUTHENTICATED}
    assert len({e.details() for e in errors}) == 1 and len({error_reason(e) for e in errors}) == 1
    # every one ran one password verification: the locked one against the dummy hash, not the user's
    assert len(verified) == 3
    user_hash = await admin_db.fetchval("SELECT password_hash FROM identity.users WHERE id = $1",
                                        uuid.UUID(other_tenant.user_id))
    assert verified[2] != user_hash and verified[2] == verified[1]


async def test_one_address_failing_on_many_accounts_is_locked(stubs, tenant, admin_db):
    for i in range(throttle.ADDRESS.max_failures):
        await fails(_login(stubs, f"spray-{i}-{uuid.uuid4().hex[:6]}@example.org", "Summer2024!!"))
    row = await admin_db.fetchrow("SELECT key, failures, locked_until > now() AS locked FROM identity.login_throttle "
                                  "WHERE key LIKE 'address:%'")
    assert row["key"] == "address:127.0.0.1" and row["failures"] == throttle.ADDRESS.max_failures and row["locked"]
    await admin_db.execute("UPDATE identity.login_throttle SET locked_until = now() + interval '1 hour' "
                           "WHERE key = 'address:127.0.0.1'")
    # a good account with its right password, from the locked address: refused alike
    e = await fails(_login(stubs, tenant.email, PASSWORD))
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED and e.details() == "invalid email, password or organization"
    await admin_db.execute("UPDATE identity.login_throttle SET locked_until = now() - interval '1 second' "
                           "WHERE key = 'address:127.0.0.1'")
    assert (await _login(stubs, tenant.email, PASSWORD)).tokens.access_token
    # a success clears the account's count, never the address's
    assert await admin_db.fetchval(
        "SELECT failures FROM identity.login_throttle WHERE key = 'address:127.0.0.1'") > 0


async def test_sign_in_success_and_failure_are_audited(stubs, tenant, admin_db):
    await fails(_login(stubs, tenant.email, "wrong password, really"))
    await _login(stubs, tenant.email, PASSWORD)
    audits = await _audits(admin_db, tenant.user_id)
    failed = [a for t, a in audits if a.action == "identity.user.sign_in_failed" and t == tenant.org_id]
    signed = [a for t, a in audits if a.action == "identity.user.signed_in" and t == tenant.org_id]
    assert failed and signed
    assert failed[-1].actor_id == tenant.user_id and failed[-1].ip_address == "127.0.0.1"
    assert failed[-1].after["reason"] == "bad_password"


# -- KYC ----------------------------------------------------------------------------------------


async def test_update_kyc_seals_the_national_id_and_shows_it_masked(accounts, tenant, admin_db):
    account = (await accounts.UpdateKyc(pb.UpdateKycRequest(kyc=_kyc()), metadata=tenant.md)).account
    kyc = account.kyc
    assert kyc.status == pb.KYC_STATUS_PENDING and kyc.national_id == "\u2022\u2022\u2022\u2022 6789"
    assert kyc.emergency_contact_phone == "+16502530000" and kyc.country == "US"
    assert (kyc.date_of_birth.year, kyc.date_of_birth.month, kyc.date_of_birth.day) == (1985, 6, 15)
    again = (await accounts.GetAccount(pb.GetAccountRequest(), metadata=tenant.md)).account
    assert again.kyc == kyc
    row = await admin_db.fetchrow("SELECT national_id_sealed, national_id_last4, kyc_status, kyc_submitted_at "
                                  "FROM identity.users WHERE id = $1", uuid.UUID(tenant.user_id))
    assert row["national_id_sealed"].startswith("v1.") and "123456789" not in row["national_id_sealed"]
    assert row["national_id_last4"] == "6789" and row["kyc_status"] == "pending"
    keyring = Keyring(IdentitySettings().encryption_keys)
    assert keyring.open(row["national_id_sealed"], tenant.user_id.encode()) == b"123456789"
    with pytest.raises(InvalidTag):  # bound to this user: another's id does not open it
        keyring.open(row["national_id_sealed"], str(uuid.uuid4()).encode())


async def test_update_kyc_keeps_the_id_on_file_when_left_empty(accounts, tenant, admin_db):
    await accounts.UpdateKyc(pb.UpdateKycRequest(kyc=_kyc()), metadata=tenant.md)
    sealed = await admin_db.fetchval("SELECT national_id_sealed FROM identity.users WHERE id = $1",
                                     uuid.UUID(tenant.user_id))
    account = (await accounts.UpdateKyc(pb.UpdateKycRequest(kyc=_kyc(national_id="", city="Chicago")),
                                        metadata=tenant.md)).account
    assert account.kyc.national_id.endswith("6789") and account.kyc.city == "Chicago"
    assert await admin_db.fetchval("SELECT national_id_sealed FROM identity.users WHERE id = $1",
                                   uuid.UUID(tenant.user_id)) == sealed
    e = await fails(accounts.UpdateKyc(pb.UpdateKycRequest(kyc=_kyc(national_id="", national_id_type="passport")),
                                      metadata=tenant.md))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "kyc.national_id" in field_violations(e)


@pytest.mark.parametrize(("changes", "field"), [
    ({"date_of_birth": date_pb2.Date(year=2999, month=1, day=1)}, "kyc.date_of_birth"),
    ({"date_of_birth": date_pb2.Date(year=1850, month=1, day=1)}, "kyc.date_of_birth"),
    ({"date_of_birth": date_pb2.Date(year=1990, month=2, day=30)}, "kyc.date_of_birth"),
    ({"date_of_birth": date_pb2.Date(year=1990)}, "kyc.date_of_birth"),
    ({"date_of_birth": None}, "kyc.date_of_birth"),
    ({"national_id": ""}, "kyc.national_id"),
    ({"national_id": "000-12-3456"}, "kyc.national_id"),
    ({"national_id": "12"}, "kyc.national_id"),
    ({"national_id": "\u2022\u2022\u2022\u2022 6789"}, "kyc.national_id"),
    ({"national_id": "ABCDE1234", "national_id_type": "pan"}, "kyc.national_id"),
    ({"national_id_type": "drivers_license"}, "kyc.national_id_type"),
    ({"national_id_type": ""}, "kyc.national_id_type"),
    ({"country": "USA"}, "kyc.country"),
    ({"country": "XX"}, "kyc.country"),
    ({"country": ""}, "kyc.country"),
    ({"address": ""}, "kyc.address"),
    ({"address": "x" * 501}, "kyc.address"),
    ({"city": ""}, "kyc.city"),
    ({"postal_code": "!!"}, "kyc.postal_code"),
    ({"emergency_contact_phone": "call me maybe"}, "kyc.emergency_contact_phone"),
    ({"emergency_contact_phone": "+1 000 000 0000"}, "kyc.emergency_contact_phone"),
    ({"id_document_url": "http://files.example.org/id.pdf"}, "kyc.id_document_url"),
    ({"address_proof_url": "javascript:alert(1)"}, "kyc.address_proof_url"),
])
async def test_update_kyc_bad_input_names_the_field_and_writes_nothing(accounts, tenant, admin_db, changes, field):
    before = await _written(admin_db, tenant.user_id)
    kyc = _kyc(**{k: v for k, v in changes.items() if v is not None})
    if changes.get("date_of_birth", 0) is None:
        kyc.ClearField("date_of_birth")
    e = await fails(accounts.UpdateKyc(pb.UpdateKycRequest(kyc=kyc), metadata=tenant.md))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and field in field_violations(e), field_violations(e)
    assert await _written(admin_db, tenant.user_id) == before


async def test_update_kyc_without_details_names_every_required_field(accounts, tenant):
    e = await fails(accounts.UpdateKyc(pb.UpdateKycRequest(), metadata=tenant.md))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {"kyc.date_of_birth", "kyc.national_id", "kyc.national_id_type", "kyc.address", "kyc.city",
            "kyc.country"} <= set(field_violations(e))


async def _member_with_kyc(stubs, accounts, admin_db, tenant):
    """Another user, a staff member of tenant's organization, who has submitted KYC."""
    member = await stubs.sign_up("Member Home Org")
    await _add_member(admin_db, member.user_id, tenant.org_id)
    await accounts.UpdateKyc(pb.UpdateKycRequest(kyc=_kyc(national_id="X7Q9Z4K2W", national_id_type="passport")),
                             metadata=member.md)
    return member


@pytest.fixture
async def reviewer(stubs, admin_db):
    """A platform operator who reviews KYC (flagged directly here; tests/identity/test_platform.py
    goes through the operators command), signed in after the grant."""
    user = await stubs.sign_up("Platform Ops")
    await admin_db.execute("INSERT INTO identity.platform_operators (user_id, permissions, granted_by) "
                           "VALUES ($1, '{platform.kyc.review}', 'test')", uuid.UUID(user.user_id))
    t = (await _login(stubs, user.email, PASSWORD)).tokens
    yield _md(t.access_token, t.organization_id)
    await admin_db.execute("DELETE FROM identity.platform_operators WHERE user_id = $1", uuid.UUID(user.user_id))


async def _reviews(admin_db, user_id: str) -> list:
    return await admin_db.fetch("SELECT actor, detail::text AS detail FROM identity.platform_activity "
                                "WHERE action = 'platform.kyc.review' AND resource_id = $1 ORDER BY id", user_id)


async def test_review_kyc_verifies_or_rejects_with_a_reason(stubs, accounts, tenant, admin_db, reviewer):
    member = await _member_with_kyc(stubs, accounts, admin_db, tenant)
    kyc = (await accounts.ReviewKyc(pb.ReviewKycRequest(user_id=member.user_id, status=pb.KYC_STATUS_REJECTED,
                                                        rejection_reason="blurry document"),
                                    metadata=reviewer)).kyc
    assert kyc.status == pb.KYC_STATUS_REJECTED and kyc.rejection_reason == "blurry document"
    assert kyc.national_id == "\u2022\u2022\u2022\u2022 4K2W"
    kyc = (await accounts.ReviewKyc(pb.ReviewKycRequest(user_id=member.user_id, status=pb.KYC_STATUS_VERIFIED),
                                    metadata=reviewer)).kyc
    assert kyc.status == pb.KYC_STATUS_VERIFIED and kyc.rejection_reason == "" and kyc.verify_time.seconds > 0
    mine = (await accounts.GetAccount(pb.GetAccountRequest(), metadata=member.md)).account.kyc
    assert mine.status == pb.KYC_STATUS_VERIFIED
    # recorded in the platform trail, with the operator as the actor
    reviews = await _reviews(admin_db, member.user_id)
    assert [json.loads(r["detail"])["status"] for r in reviews] == ["rejected", "verified"]
    assert {r["actor"] for r in reviews} == {_subject(reviewer)}
    # resubmitting makes it pending again
    account = (await accounts.UpdateKyc(pb.UpdateKycRequest(kyc=_kyc(national_id="", national_id_type="passport")),
                                        metadata=member.md)).account
    assert account.kyc.status == pb.KYC_STATUS_PENDING and account.kyc.rejection_reason == ""


def _subject(md) -> str:
    return jwt.decode(dict(md)["authorization"][7:], options={"verify_signature": False})["sub"]


@pytest.mark.parametrize(("user_id", "status", "reason", "field"), [
    ("", pb.KYC_STATUS_VERIFIED, "", "user_id"),
    ("not-an-id", pb.KYC_STATUS_VERIFIED, "", "user_id"),
    (None, pb.KYC_STATUS_UNSPECIFIED, "", "status"),
    (None, pb.KYC_STATUS_PENDING, "", "status"),
    (None, pb.KYC_STATUS_REJECTED, "", "rejection_reason"),
    (None, pb.KYC_STATUS_REJECTED, "   ", "rejection_reason"),
    (None, pb.KYC_STATUS_REJECTED, "x" * 1001, "rejection_reason"),
    (None, pb.KYC_STATUS_VERIFIED, "but why", "rejection_reason"),
])
async def test_review_kyc_bad_input(stubs, accounts, tenant, admin_db, reviewer, user_id, status, reason, field):
    member = await _member_with_kyc(stubs, accounts, admin_db, tenant)
    before = await _written(admin_db, member.user_id)
    e = await fails(accounts.ReviewKyc(pb.ReviewKycRequest(user_id=member.user_id if user_id is None else user_id,
                                                          status=status, rejection_reason=reason),
                                      metadata=reviewer))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and field in field_violations(e)
    assert await _written(admin_db, member.user_id) == before


async def test_review_kyc_only_by_a_platform_operator(stubs, accounts, tenant, other_tenant, admin_db, reviewer):
    member = await _member_with_kyc(stubs, accounts, admin_db, tenant)
    # an owner of the member's organization does not review: KYC is the user's, not the organization's
    e = await fails(accounts.ReviewKyc(pb.ReviewKycRequest(user_id=member.user_id, status=pb.KYC_STATUS_VERIFIED),
                                      metadata=tenant.md))
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED
    # the operator reviews a user of any organization
    await accounts.UpdateKyc(pb.UpdateKycRequest(kyc=_kyc()), metadata=other_tenant.md)
    await accounts.ReviewKyc(pb.ReviewKycRequest(user_id=other_tenant.user_id, status=pb.KYC_STATUS_VERIFIED),
                             metadata=reviewer)
    e = await fails(accounts.ReviewKyc(pb.ReviewKycRequest(user_id=str(uuid.uuid4()),
                                                          status=pb.KYC_STATUS_VERIFIED), metadata=reviewer))
    assert e.code() == grpc.StatusCode.NOT_FOUND
    # nobody reviews themself
    await accounts.UpdateKyc(pb.UpdateKycRequest(kyc=_kyc()), metadata=reviewer)
    e = await fails(accounts.ReviewKyc(pb.ReviewKycRequest(user_id=_subject(reviewer),
                                                          status=pb.KYC_STATUS_VERIFIED), metadata=reviewer))
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED and error_reason(e) == "KYC_SELF_REVIEW"
    # a user with nothing submitted
    quiet = await stubs.sign_up("Quiet Org")
    e = await fails(accounts.ReviewKyc(pb.ReviewKycRequest(user_id=quiet.user_id, status=pb.KYC_STATUS_VERIFIED),
                                      metadata=reviewer))
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION and error_reason(e) == "KYC_NOT_SUBMITTED"


# -- nothing secret in clear --------------------------------------------------------------------


async def test_identity_schema_holds_no_password_national_id_or_token_in_clear(stubs, accounts, tenant, admin_db):
    national_id = "X7Q9Z4K2W"
    await accounts.UpdateKyc(pb.UpdateKycRequest(kyc=_kyc(national_id=national_id, national_id_type="passport")),
                             metadata=tenant.md)
    await accounts.RequestEmailVerification(pb.RequestEmailVerificationRequest(), metadata=tenant.md)
    verify = _link(await _last_event(admin_db, "identity.user.email_verification_requested", tenant.user_id,
                                     identity_events_pb2.EmailVerificationRequestedEvent), "sealed_verify_link")
    reset = _token_of(await _reset_link(accounts, admin_db, tenant))
    used_reset = _token_of(await _reset_link(accounts, admin_db, tenant))
    await accounts.ResetPassword(pb.ResetPasswordRequest(token=used_reset, new_password=NEW_PASSWORD))
    await fails(_login(stubs, tenant.email, "a wrong guess at it"))
    dumps = {}
    for table in ("users", "user_tokens", "login_throttle", "refresh_tokens"):
        dumps[table] = await admin_db.fetchval(f"SELECT string_agg(t::text, '|') FROM identity.{table} t") or ""
    everything = "|".join(dumps.values())
    for secret in (PASSWORD, NEW_PASSWORD, "a wrong guess at it", national_id, _token_of(verify), reset,
                   used_reset):
        assert secret not in everything, secret
    assert "$argon2id$" in dumps["users"] and "v1." in dumps["users"]
    # the outbox carries the links to comms (that is its job), but no password and no national id
    outbox = await admin_db.fetch("SELECT body FROM identity.outbox")
    blob = b"|".join(r["body"] for r in outbox)
    for secret in (PASSWORD, NEW_PASSWORD, national_id):
        assert secret.encode() not in blob
