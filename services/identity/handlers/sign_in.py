"""Signing in: sign up (a new user and organization), log in, the second step of a login
(MFA), and refresh. Every path ends in handlers/tokens.py; failed sign-ins are throttled and
audited (handlers/throttle.py)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from givance.events.v1 import identity_events_pb2

from chassis.errors import AlreadyExists, InvalidArgument, ResourceExhausted, Unauthenticated, Violations
from chassis.resource import check_request_id, parse_optional_id
from services.identity.domain import accounts as rules
from services.identity.domain import mfa as mfa_rules
from services.identity.domain import passwords, roles
from services.identity.domain import tokens as token_rules
from services.identity.handlers import mfa, sessions, throttle
from services.identity.handlers.caller import Client
from services.identity.handlers.deps import Deps
from services.identity.handlers.rights import publish_member_joined
from services.identity.handlers.tokens import Tokens, issue_tokens
from services.identity.store import accounts as store
from services.identity.store import mfa as mfa_store
from services.identity.store import organizations as organization_store
from services.identity.store.accounts import User
from services.identity.store.organizations import Organization

BAD_LOGIN = "invalid email, password or organization"


@dataclass(frozen=True)
class SignUpResult:
    user: User
    organization: Organization
    tokens: Tokens


@dataclass(frozen=True)
class MfaVerified:
    tokens: Tokens
    device_token: str  # empty unless the device was trusted


async def sign_up(deps: Deps, *, email: str, password: str, first_name: str, last_name: str,
                  organization_name: str, organization_slug: str, request_id: str) -> SignUpResult:
    v = Violations()
    email = rules.normalize_email(email, "email", v)
    passwords.check_password(password, "password", v, email=email, first_name=first_name, last_name=last_name)
    organization_name = organization_name.strip()
    if not organization_name:
        v.add("organization_name", "is required")
    elif len(organization_name) > 200:
        v.add("organization_name", "must be at most 200 characters")
    slug_given = bool(organization_slug)
    slug = organization_slug if slug_given else rules.slugify(organization_name)
    if slug_given:
        rules.check_slug(slug, "organization_slug", v)
    if len(first_name) > 100:
        v.add("first_name", "must be at most 100 characters")
    if len(last_name) > 100:
        v.add("last_name", "must be at most 100 characters")
    check_request_id(request_id, v)
    v.raise_if_any()

    if request_id:
        replay = await _replayed_sign_up(deps, request_id, email, password)
        if replay is not None:
            return replay

    password_hash = await deps.passwords.hash(password)
    user_id, org_id = uuid.uuid4(), uuid.uuid4()
    if not slug_given and len(slug) < 3:
        slug = f"{slug}-org"
    for attempt in range(3):
        try:
            async with deps.db.unit_of_work(org_id) as uow:
                org = await store.insert_organization(uow.conn, org_id, organization_name, slug, user_id)
                user = await store.insert_user(uow.conn, user_id, email, password_hash, first_name.strip(),
                                               last_name.strip(), org_id, request_id or None)
                await store.insert_membership(uow.conn, user_id, org_id, roles.OWNER)
                uow.publish(
                    "identity.organization.created",
                    identity_events_pb2.OrganizationCreatedEvent(
                        organization_id=str(org_id), name=organization_name, slug=slug,
                        owner_user_id=str(user_id)),
                    aggregate_type="organization", aggregate_id=str(org_id),
                )
                publish_member_joined(uow, org_id, user_id, roles.OWNER)
                tokens = await issue_tokens(deps, uow, user_id, org_id, uuid.uuid4(), auth_time=time.time())
            return SignUpResult(user=user, organization=org, tokens=tokens)
        except AlreadyExists as exc:
            if exc.reason == "SLUG_TAKEN" and not slug_given and attempt < 2:
                slug = f"{rules.slugify(organization_name)[:56]}-{uuid.uuid4().hex[:6]}"
                continue
            if exc.reason == "EMAIL_TAKEN" and request_id:
                replay = await _replayed_sign_up(deps, request_id, email, password)
                if replay is not None:
                    return replay
            raise
    raise AssertionError("unreachable")


async def _replayed_sign_up(deps: Deps, request_id: str, email: str, password: str) -> SignUpResult | None:
    """AIP-155: a retried sign-up returns the first result (after the same password)."""
    async with deps.db.unit_of_work(None) as uow:
        user = await store.user_by_signup_request(uow.conn, request_id)
    if user is None:
        return None
    if user["email"] != email or not await deps.passwords.verify(user["password_hash"], password):
        raise AlreadyExists("request_id was used for another sign-up", reason="REQUEST_ID_REUSED")
    org_id = user["default_organization_id"]
    async with deps.db.unit_of_work(org_id) as uow:
        org = await organization_store.get(uow.conn, org_id)
        role = await store.active_membership_role(uow.conn, user["id"], org_id)
        if org is None or role is None:
            raise AlreadyExists("request_id was used for another sign-up", reason="REQUEST_ID_REUSED")
        tokens = await issue_tokens(deps, uow, user["id"], org_id, uuid.uuid4(), auth_time=time.time())
    first = User(id=user["id"], email=user["email"], first_name=user["first_name"], last_name=user["last_name"],
                 default_organization_id=user["default_organization_id"], created_at=user["created_at"])
    return SignUpResult(user=first, organization=org, tokens=tokens)


async def login(deps: Deps, client: Client, *, email: str, password: str, organization_id: str,
                device_token: str = "") -> Tokens | mfa.MfaChallenge:
    v = Violations()
    if not email:
        v.add("email", "is required")
    if not password:
        v.add("password", "is required")
    org_id = parse_optional_id(organization_id, "organization_id", v)
    v.raise_if_any()

    async with deps.db.unit_of_work(None) as uow:
        user = await store.user_by_email(uow.conn, email.strip())
    locked = await throttle.attempt(deps.db, email, client)  # counted before the check, atomically
    # Unknown email, wrong password, locked (account or client address), inactive user, not a
    # member: one answer, alike in time (a locked login still verifies, against the dummy hash).
    known_hash = user["password_hash"] if user and not locked else deps.passwords.dummy_hash
    try:
        ok = await deps.passwords.verify(known_hash, password)
    except ResourceExhausted:  # shed before any check: the attempt does not count
        await throttle.withdraw(deps.db, email, client)
        raise
    if locked or not user or not ok or not user["is_active"]:
        reason = "locked" if locked else "unknown" if not user else "bad_password" if not ok else "inactive"
        await throttle.failed(deps.db, email, user, reason, client)
        raise Unauthenticated(BAD_LOGIN)
    org_id = org_id or user["default_organization_id"]
    if org_id is None:
        async with deps.db.unit_of_work(None) as uow:
            await throttle.succeeded(uow, email, client)
        raise Unauthenticated(BAD_LOGIN)
    async with deps.db.unit_of_work(org_id) as uow:
        await throttle.succeeded(uow, email, client)
        role = await store.active_membership_role(uow.conn, user["id"], org_id)
        if role is not None:
            # MFA enabled (and no trusted device token): no tokens yet, a challenge for VerifyMfa.
            challenge = await mfa.login_challenge(uow, user["id"], org_id, device_token)
            if challenge is not None:
                return challenge
            throttle.audit_sign_in(uow, throttle.SIGNED_IN, user["id"], client)
            return await issue_tokens(deps, uow, user["id"], org_id, uuid.uuid4(), auth_time=time.time())
    raise Unauthenticated(BAD_LOGIN)  # not a member (the password was right: nothing counted)


async def refresh(deps: Deps, client: Client, refresh_token: str) -> Tokens:
    if not refresh_token:
        raise InvalidArgument.field("refresh_token", "is required")
    parsed = token_rules.parse_refresh_token(refresh_token)
    if parsed is None:
        raise Unauthenticated("invalid refresh token")
    org_id, token_hash = parsed
    reused = False
    ended = sessions.EndedSessions(deps.revocations)
    async with deps.db.unit_of_work(org_id) as uow:
        row = await store.refresh_token_for_update(uow.conn, token_hash)
        if row is None:
            raise Unauthenticated("invalid refresh token")
        if row["used_at"] is not None or row["revoked_at"] is not None:
            # A spent token came back: it was stolen or replayed. End the whole family, and its
            # access tokens on every service (the thief may hold one).
            if await store.revoke_family(uow.conn, row["family_id"]):
                await ended.add(uow, org_id, row["user_id"], row["family_id"], sessions.REFRESH_REUSED)
            reused = True
        elif row["expired"]:
            raise Unauthenticated("refresh token expired")
        else:
            await store.mark_refresh_token_used(uow.conn, row["id"])
            role = await store.active_membership_role(uow.conn, row["user_id"], org_id)
            if role is None:
                await store.revoke_family(uow.conn, row["family_id"])
                await ended.add(uow, org_id, row["user_id"], row["family_id"], sessions.MEMBERSHIP_ENDED)
                reused = True
            else:
                tokens = await issue_tokens(deps, uow, row["user_id"], org_id, row["family_id"],
                                            auth_time=row["auth_time"])  # the session's sign-in
                # The session's last use, client and address (SessionService lists them).
                await sessions.stamp_refreshed(uow, org_id, row["family_id"], row["id"], client)
    if reused:
        ended.apply()
        raise Unauthenticated("refresh token is no longer valid; sign in again", reason="REFRESH_REVOKED")
    return tokens


async def verify_mfa(deps: Deps, client: Client, *, challenge_token: str, code: str, trust_device: bool,
                     device_name: str) -> MfaVerified:
    v = Violations()
    if not challenge_token:
        v.add("challenge_token", "is required")
    elif len(challenge_token) > mfa_rules.TOKEN_MAX:
        v.add("challenge_token", f"must be at most {mfa_rules.TOKEN_MAX} characters")
    parsed = mfa_rules.parse_code(code, "code", v)
    name = mfa_rules.check_device_name(device_name, "device_name", v)
    v.raise_if_any()
    assert parsed is not None
    found = mfa_rules.parse_challenge_token(challenge_token)
    if found is None:
        raise Unauthenticated(mfa.BAD_CHALLENGE, reason="MFA_CHALLENGE_INVALID")
    org_id, challenge_hash = found
    result = None
    async with deps.db.unit_of_work(org_id) as uow:
        challenge = await mfa_store.challenge_for_update(uow.conn, challenge_hash)
        if (challenge is None or challenge["used_at"] is not None or challenge["expired"]
                or challenge["attempts"] >= mfa_rules.CHALLENGE_MAX_ATTEMPTS):
            raise Unauthenticated(mfa.BAD_CHALLENGE, reason="MFA_CHALLENGE_INVALID")
        user_id = challenge["user_id"]
        row = await mfa_store.mfa_for_update(uow.conn, user_id)
        if row is None or not row["enabled"]:
            raise Unauthenticated(mfa.BAD_CHALLENGE, reason="MFA_CHALLENGE_INVALID")
        mfa.refuse_if_locked(row)
        if not await mfa.check_code(deps.keyring, uow, user_id, row, parsed, "login"):
            await mfa_store.count_challenge_attempt(uow.conn, challenge["id"])
        else:
            await mfa_store.mark_challenge_used(uow.conn, challenge["id"])
            role = await store.active_membership_role(uow.conn, user_id, org_id)
            if role is None or await mfa_store.user_email(uow.conn, user_id) is None:
                raise Unauthenticated(mfa.BAD_CHALLENGE, reason="MFA_CHALLENGE_INVALID")
            throttle.audit_sign_in(uow, throttle.SIGNED_IN, user_id, client)
            tokens = await issue_tokens(deps, uow, user_id, org_id, uuid.uuid4(), auth_time=time.time())
            device_token = await mfa.trust_device(uow, user_id, name, client) if trust_device else ""
            result = MfaVerified(tokens=tokens, device_token=device_token)
    if result is None:
        raise Unauthenticated(mfa.BAD_CODE, reason="MFA_CODE_INVALID")
    return result
