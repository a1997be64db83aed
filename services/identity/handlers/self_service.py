"""The caller's own account: email and phone verification, password reset and change, KYC,
and the review of a member's KYC.

Links and codes sent to a user are single use, expire, and are stored only hashed
(domain/verification.py); the event that carries one to comms is written in the same
transaction (outbox), for the user's default organization. Ending sessions means revoking
the user's refresh families in every organization (the own_rows policy, app.user_id);
access tokens already issued run out on their own (15 minutes).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from givance.events.v1 import identity_events_pb2

from chassis.context import Principal
from chassis.convert import timestamp
from chassis.db import Database, UnitOfWork
from chassis.errors import (
    Aborted,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Violations,
)
from chassis.resource import parse_id
from services.identity.domain import accounts as account_rules
from services.identity.domain import kyc as kyc_rules
from services.identity.domain import passwords
from services.identity.domain import rate_limits as rate_rules
from services.identity.domain import verification as tokens
from services.identity.domain.kyc import KycInput
from services.identity.domain.phones import normalize_phone
from services.identity.handlers import platform, rate_limits, reauth, sessions, throttle
from services.identity.handlers.caller import Client, require_user, session_id
from services.identity.handlers.deps import Deps
from services.identity.store import users
from services.identity.store.users import Account

BAD_TOKEN = "is invalid or has expired"
PASSWORD_CHANGE_FAILED = "identity.user.password_change_failed"
KYC_REVIEW = "platform.kyc.review"
EMAIL_VERIFICATION_REQUESTED = "identity.user.email_verification_requested"
PASSWORD_RESET_REQUESTED = "identity.user.password_reset_requested"
PHONE_VERIFICATION_REQUESTED = "identity.user.phone_verification_requested"


async def get_account(db: Database, principal: Principal, tenant_id: uuid.UUID) -> Account:
    me = _me(principal)
    async with db.unit_of_work(tenant_id) as uow:
        account = await users.get_account(uow.conn, me)
    if account is None:
        raise NotFound("account not found")
    return account


async def request_email_verification(deps: Deps, client: Client, principal: Principal,
                                     tenant_id: uuid.UUID) -> None:
    me = _me(principal)
    await rate_limits.spend(deps.db, rate_rules.EMAIL_VERIFICATION, client, str(me))
    async with deps.db.unit_of_work(tenant_id) as uow:
        account = await users.get_account(uow.conn, me, for_update=True)
        if account is None:
            raise NotFound("account not found")
        if account.email_verified_at is not None:
            raise FailedPrecondition("the email address is already verified", reason="EMAIL_ALREADY_VERIFIED")
        link, expires = await _new_link(deps.settings.public_url, uow, me, tokens.EMAIL_VERIFICATION, account.email)
        uow.publish(
            EMAIL_VERIFICATION_REQUESTED,
            identity_events_pb2.EmailVerificationRequestedEvent(
                user_id=str(me), email=account.email, expire_time=timestamp(expires),
                sealed_verify_link=deps.seal_for_comms(EMAIL_VERIFICATION_REQUESTED, str(me), link)),
            aggregate_type="user", aggregate_id=str(me),
            tenant_id=account.default_organization_id or tenant_id,
        )


async def verify_email(db: Database, token: str) -> None:
    token_hash = _token_hash(token)
    verified = False
    async with db.unit_of_work(None) as uow:
        row = await users.token_for_update(uow.conn, tokens.EMAIL_VERIFICATION, token_hash)
        # The link is good only for the address it was sent to.
        if row is not None and await users.set_email_verified(uow.conn, row["user_id"], row["target"]):
            await users.spend_token(uow.conn, row["id"])
            verified = True
    if not verified:
        raise InvalidArgument.field("token", BAD_TOKEN)


async def request_password_reset(deps: Deps, client: Client, email: str) -> None:
    """Answers alike whether or not an account has the email; only a known one gets a link."""
    v = Violations()
    if not email.strip():
        v.add("email", "is required")
    else:
        email = account_rules.normalize_email(email.strip(), "email", v)
    v.raise_if_any()
    await rate_limits.spend(deps.db, rate_rules.PASSWORD_RESET, client, email)  # known or not, alike
    async with deps.db.unit_of_work(None) as uow:
        user = await users.active_user_by_email(uow.conn, email)
    if user is None or user["default_organization_id"] is None:
        return
    async with deps.db.unit_of_work(user["default_organization_id"]) as uow:
        link, expires = await _new_link(deps.settings.public_url, uow, user["id"], tokens.PASSWORD_RESET, user["email"])
        uow.publish(
            PASSWORD_RESET_REQUESTED,
            identity_events_pb2.PasswordResetRequestedEvent(
                user_id=str(user["id"]), email=user["email"], expire_time=timestamp(expires),
                sealed_reset_link=deps.seal_for_comms(PASSWORD_RESET_REQUESTED, str(user["id"]), link)),
            aggregate_type="user", aggregate_id=str(user["id"]),
        )


async def reset_password(deps: Deps, token: str, new_password: str) -> None:
    """Sets the password from a reset link, spends the link and ends every session of the user."""
    v = Violations()
    token_hash = _token_hash(token, v)
    if not new_password:
        v.add("new_password", "is required")
    v.raise_if_any()
    async with deps.db.unit_of_work(None) as uow:
        row = await users.token_for_update(uow.conn, tokens.PASSWORD_RESET, token_hash)
        user = await users.credentials(uow.conn, row["user_id"]) if row else None
    if (row is None or user is None or not user["is_active"]
            or user["email"].lower() != (row["target"] or "").lower()):
        raise InvalidArgument.field("token", BAD_TOKEN)
    passwords.check_password(new_password, "new_password", v, email=user["email"],
                             first_name=user["first_name"], last_name=user["last_name"])
    v.raise_if_any()
    new_hash = await deps.passwords.hash(new_password)
    user_id, org_id = user["id"], user["default_organization_id"]
    sessions_ended = sessions.EndedSessions(deps.revocations)
    # The tenant is there for the audit record; app.user_id reaches the sessions in every organization.
    async with deps.db.unit_of_work(org_id, user_id=user_id) as uow:
        if await users.token_for_update(uow.conn, tokens.PASSWORD_RESET, token_hash) is None:
            raise InvalidArgument.field("token", BAD_TOKEN)  # spent by a concurrent reset
        await users.retire_tokens(uow.conn, user_id, tokens.PASSWORD_RESET)
        await users.set_password(uow.conn, user_id, new_hash)
        ended, families = await users.revoke_sessions(uow.conn, user_id)
        for org, family in sorted(families):
            await sessions_ended.add(uow, org, user_id, family, sessions.PASSWORD_RESET)
        await throttle.forgive(uow, user["email"])
        if org_id is not None:
            uow.audit("identity.user.password_reset", "user", str(user_id), after={"sessions_ended": ended},
                      actor_id=str(user_id), actor_kind="user")
    sessions_ended.apply()


async def change_password(deps: Deps, client: Client, principal: Principal, tenant_id: uuid.UUID,
                          current_password: str, new_password: str) -> None:
    """Needs the current password (throttled like a sign-in); ends the user's other sessions."""
    me = _me(principal)
    v = Violations()
    if not current_password:
        v.add("current_password", "is required")
    if not new_password:
        v.add("new_password", "is required")
    v.raise_if_any()
    async with deps.db.unit_of_work(tenant_id) as uow:
        user = await users.credentials(uow.conn, me)
    if user is None:
        raise NotFound("account not found")
    passwords.check_password(new_password, "new_password", v, email=user["email"],
                             first_name=user["first_name"], last_name=user["last_name"])
    if not v and new_password == current_password:
        v.add("new_password", "must differ from the current password")
    v.raise_if_any()
    await reauth.verify_current_password(deps, client, user, current_password, action=PASSWORD_CHANGE_FAILED)
    new_hash = await deps.passwords.hash(new_password)
    sessions_ended = sessions.EndedSessions(deps.revocations)
    async with deps.db.unit_of_work(tenant_id, user_id=me) as uow:
        if not await users.set_password(uow.conn, me, new_hash, expected_old_hash=user["password_hash"]):
            raise Aborted("the password changed meanwhile; try again", reason="PASSWORD_CHANGED")
        await throttle.passed(uow, client, user["email"])
        ended, families = await users.revoke_sessions(uow.conn, me, keep_family=session_id(principal))
        for org, family in sorted(families):
            await sessions_ended.add(uow, org, me, family, sessions.PASSWORD_CHANGED)
        uow.audit("identity.user.password_changed", "user", str(me), after={"sessions_ended": ended})
    sessions_ended.apply()


async def request_phone_verification(deps: Deps, client: Client, principal: Principal, tenant_id: uuid.UUID,
                                     phone: str) -> datetime:
    """Sends a six-digit code to the number (through comms); returns when it expires."""
    me = _me(principal)
    db = deps.db
    async with db.unit_of_work(tenant_id) as uow:
        account = await users.get_account(uow.conn, me)
    if account is None:
        raise NotFound("account not found")
    v = Violations()
    e164 = normalize_phone(phone, "phone", v, region=account.country)
    v.raise_if_any()
    await rate_limits.spend(db, rate_rules.PHONE_CODE, client, e164, account=str(me))
    code, token_id = tokens.new_phone_code(), uuid.uuid4()
    expires = datetime.now(UTC) + tokens.TTL[tokens.PHONE_VERIFICATION]
    async with db.unit_of_work(tenant_id) as uow:
        await users.retire_tokens(uow.conn, me, tokens.PHONE_VERIFICATION)
        await users.insert_token(uow.conn, token_id=token_id, user_id=me, purpose=tokens.PHONE_VERIFICATION,
                                 token_hash=tokens.hash_phone_code(token_id, e164, code), target=e164,
                                 expires_at=expires)
        uow.publish(
            PHONE_VERIFICATION_REQUESTED,
            identity_events_pb2.PhoneVerificationRequestedEvent(
                user_id=str(me), phone=e164, expire_time=timestamp(expires),
                sealed_code=deps.seal_for_comms(PHONE_VERIFICATION_REQUESTED, str(me), code)),
            aggregate_type="user", aggregate_id=str(me),
            tenant_id=account.default_organization_id or tenant_id,
        )
    return expires


async def verify_phone(db: Database, principal: Principal, tenant_id: uuid.UUID, code: str) -> Account:
    me = _me(principal)
    code = code.strip()
    if not code:
        raise InvalidArgument.field("code", "is required")
    if not tokens.looks_like_phone_code(code):
        raise InvalidArgument.field("code", f"must be {tokens.PHONE_CODE_DIGITS} digits")
    outcome, account = "", None
    # A wrong guess is counted (committed) before the error goes back.
    async with db.unit_of_work(tenant_id) as uow:
        row = await users.live_token_of_user_for_update(uow.conn, me, tokens.PHONE_VERIFICATION)
        if row is None:
            outcome = "none"
        elif not tokens.phone_code_matches(row["id"], row["target"], code, row["token_hash"]):
            attempts = await users.count_failed_attempt(uow.conn, row["id"], tokens.PHONE_CODE_MAX_ATTEMPTS)
            outcome = "wrong" if attempts < tokens.PHONE_CODE_MAX_ATTEMPTS else "exhausted"
        else:
            await users.spend_token(uow.conn, row["id"])
            await users.set_verified_phone(uow.conn, me, row["target"])
            account = await users.get_account(uow.conn, me)
    if outcome == "none":
        raise FailedPrecondition("no phone verification code is pending; request a new one",
                                 reason="PHONE_CODE_EXPIRED")
    if outcome == "wrong":
        raise InvalidArgument.field("code", "is incorrect")
    if outcome == "exhausted":
        raise FailedPrecondition("too many wrong codes; request a new one", reason="PHONE_CODE_ATTEMPTS_EXHAUSTED")
    assert account is not None
    return account


async def update_kyc(deps: Deps, principal: Principal, tenant_id: uuid.UUID, kyc: KycInput) -> Account:
    """Stores the caller's KYC details (the national id sealed, bound to the user) as pending."""
    me = _me(principal)
    async with deps.db.unit_of_work(tenant_id) as uow:
        account = await users.get_account(uow.conn, me)
    if account is None:
        raise NotFound("account not found")
    v = Violations()
    on_file = account.national_id_type if account.has_national_id else None
    details = kyc_rules.validate(kyc, today=datetime.now(UTC).date(), id_on_file_type=on_file, violations=v)
    v.raise_if_any()
    assert details is not None
    sealed = deps.keyring.seal(details.national_id.encode(), national_id_aad(me)) if details.national_id else None
    async with deps.db.unit_of_work(tenant_id) as uow:
        await users.submit_kyc(
            uow.conn, me, date_of_birth=details.date_of_birth, national_id_sealed=sealed,
            national_id_last4=details.national_id_last4, national_id_type=details.national_id_type,
            address=details.address, city=details.city, state=details.state, postal_code=details.postal_code,
            country=details.country, emergency_contact_name=details.emergency_contact_name,
            emergency_contact_phone=details.emergency_contact_phone,
            emergency_contact_relation=details.emergency_contact_relation,
            id_document_url=details.id_document_url, address_proof_url=details.address_proof_url,
        )
        uow.audit("identity.kyc.submitted", "user", str(me),
                  after={"status": kyc_rules.PENDING, "national_id_type": details.national_id_type,
                         "national_id_changed": details.national_id is not None, "country": details.country})
        account = await users.get_account(uow.conn, me)
    assert account is not None
    return account


async def review_kyc(db: Database, principal: Principal, tenant_id: uuid.UUID, user_id: str, status: str,
                     rejection_reason: str) -> Account:
    """A platform operator (platform.kyc.review) verifies or rejects a user's KYC. KYC is the
    user's, the same in every organization, so no organization's member reviews it; the review
    is recorded in the platform trail."""
    v = Violations()
    target = parse_id(user_id, "user_id", v)
    reason = kyc_rules.check_review(status, rejection_reason, v)
    v.raise_if_any()
    assert target is not None
    async with db.unit_of_work(tenant_id) as uow:
        await platform.require(uow, principal, KYC_REVIEW)  # a platform operator, still
        if str(target) == principal.subject:
            raise PermissionDenied("a reviewer cannot review their own KYC", reason="KYC_SELF_REVIEW")
        account = await users.get_account(uow.conn, target, for_update=True)
        if account is None:
            raise NotFound("user not found")
        if account.kyc_submitted_at is None:
            raise FailedPrecondition("the user has submitted no KYC details", reason="KYC_NOT_SUBMITTED")
        await users.review_kyc(uow.conn, target, status, reason)
        await platform.record(uow, principal, "platform.kyc.review", "user", str(target),
                              {"before": account.kyc_status, "status": status, "rejection_reason": reason or None})
        account = await users.get_account(uow.conn, target)
    assert account is not None
    return account


async def _new_link(public_url: str, uow: UnitOfWork, user_id: uuid.UUID, purpose: str,
                    target: str) -> tuple[str, datetime]:
    """A fresh single-use link (older live ones of the purpose are spent); returns it and its expiry."""
    token, token_hash = tokens.new_link_token()
    expires = datetime.now(UTC) + tokens.TTL[purpose]
    await users.retire_tokens(uow.conn, user_id, purpose)
    await users.insert_token(uow.conn, token_id=uuid.uuid4(), user_id=user_id, purpose=purpose,
                             token_hash=token_hash, target=target, expires_at=expires)
    return tokens.link(public_url, purpose, token), expires


def national_id_aad(user_id: uuid.UUID) -> bytes:
    """The associated data a national id is sealed with: it opens only as that user's."""
    return str(user_id).encode()


def _me(principal: Principal | None) -> uuid.UUID:
    return require_user(principal, "only a signed-in user has an account")


def _token_hash(token: str, v: Violations | None = None) -> bytes:
    """The hash to look a link token up by; a missing or malformed token is a violation on `token`."""
    own = v is None
    v = v if v is not None else Violations()
    if not token:
        v.add("token", "is required")
    elif not tokens.looks_like_token(token):
        v.add("token", BAD_TOKEN)
    if own:
        v.raise_if_any()
    return tokens.hash_token(token)
