"""identity use cases: sign up, log in, refresh, read the organization."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from givance.events.v1 import identity_events_pb2

from chassis.auth import AUDIENCE, ISSUER
from chassis.db import Database, UnitOfWork
from chassis.errors import AlreadyExists, InvalidArgument, NotFound, Unauthenticated, Violations
from services.identity.domain import accounts as rules
from services.identity.domain import passwords, roles
from services.identity.domain import tokens as token_rules
from services.identity.handlers import grants, mfa, sessions
from services.identity.handlers.keys import SigningKeys
from services.identity.handlers.throttle import SIGNED_IN, LoginThrottle, audit_sign_in
from services.identity.store import accounts as store

BAD_LOGIN = "invalid email, password or organization"
MEMBER_JOINED = "identity.member.joined"


def publish_member_joined(uow: UnitOfWork, org_id: uuid.UUID, user_id: uuid.UUID, role: str) -> None:
    """identity.member.joined, in the transaction that writes the active membership (crm keeps
    a replica of who may be assigned work). Same aggregate as identity.membership.changed, so
    the relay publishes a member's events in order."""
    now = datetime.now(UTC)
    event = identity_events_pb2.MemberJoinedEvent(organization_id=str(org_id), user_id=str(user_id), role=role)
    event.join_time.FromDatetime(now)
    uow.publish(MEMBER_JOINED, event, aggregate_type="membership", aggregate_id=f"{org_id}/{user_id}",
                occurred_at=now)


@dataclass(frozen=True)
class Tokens:
    access_token: str
    access_expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime
    user_id: uuid.UUID
    organization_id: uuid.UUID
    role: str


@dataclass(frozen=True)
class SignUpResult:
    user: dict
    organization: dict
    tokens: Tokens


class Accounts:
    def __init__(self, db: Database, keys: SigningKeys, hasher: PasswordHasher,
                 access_ttl: int, refresh_ttl: int):
        self.db = db
        self.keys = keys
        self.hasher = hasher
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self.throttle = LoginThrottle(db)
        # Verifying against this when the email is unknown makes both answers take alike.
        self._dummy_hash = hasher.hash(uuid.uuid4().hex)

    async def hash_password(self, password: str) -> str:
        return await asyncio.to_thread(self.hasher.hash, password)

    async def verify_password(self, password_hash: str, password: str) -> bool:
        try:
            return await asyncio.to_thread(self.hasher.verify, password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    # -- sign up ----------------------------------------------------------------------------

    async def sign_up(self, *, email: str, password: str, first_name: str, last_name: str,
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
        if request_id and len(request_id) > 100:
            v.add("request_id", "must be at most 100 characters")
        v.raise_if_any()

        if request_id:
            replay = await self._replayed_sign_up(request_id, email, password)
            if replay is not None:
                return replay

        password_hash = await self.hash_password(password)
        user_id, org_id = uuid.uuid4(), uuid.uuid4()
        if not slug_given and len(slug) < 3:
            slug = f"{slug}-org"
        for attempt in range(3):
            try:
                async with self.db.unit_of_work(org_id) as uow:
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
                    tokens = await self._issue(uow, user_id, org_id, roles.OWNER, uuid.uuid4())
                return SignUpResult(user=user, organization=org, tokens=tokens)
            except AlreadyExists as exc:
                if exc.reason == "SLUG_TAKEN" and not slug_given and attempt < 2:
                    slug = f"{rules.slugify(organization_name)[:56]}-{uuid.uuid4().hex[:6]}"
                    continue
                if exc.reason == "EMAIL_TAKEN" and request_id:
                    replay = await self._replayed_sign_up(request_id, email, password)
                    if replay is not None:
                        return replay
                raise
        raise AssertionError("unreachable")

    async def _replayed_sign_up(self, request_id: str, email: str, password: str) -> SignUpResult | None:
        """AIP-155: a retried sign-up returns the first result (after the same password)."""
        async with self.db.unit_of_work(None) as uow:
            user = await store.user_by_signup_request(uow.conn, request_id)
        if user is None:
            return None
        if user["email"] != email or not await self.verify_password(user["password_hash"], password):
            raise AlreadyExists("request_id was used for another sign-up", reason="REQUEST_ID_REUSED")
        org_id = user["default_organization_id"]
        async with self.db.unit_of_work(org_id) as uow:
            org = await store.get_organization(uow.conn, org_id)
            role = await store.active_membership_role(uow.conn, user["id"], org_id)
            if org is None or role is None:
                raise AlreadyExists("request_id was used for another sign-up", reason="REQUEST_ID_REUSED")
            tokens = await self._issue(uow, user["id"], org_id, role, uuid.uuid4())
        user.pop("password_hash", None)
        return SignUpResult(user=user, organization=org, tokens=tokens)

    # -- log in -----------------------------------------------------------------------------

    async def login(self, *, email: str, password: str, organization_id: str,
                    device_token: str = "") -> Tokens | mfa.MfaChallenge:
        v = Violations()
        if not email:
            v.add("email", "is required")
        if not password:
            v.add("password", "is required")
        org_id = None
        if organization_id:
            try:
                org_id = uuid.UUID(organization_id)
            except ValueError:
                v.add("organization_id", "is not a valid id")
        v.raise_if_any()

        async with self.db.unit_of_work(None) as uow:
            user = await store.user_by_email(uow.conn, email.strip())
            locked = await self.throttle.locked(uow, email)
        # Unknown email, wrong password, locked (account or client address), inactive user, not a
        # member: one answer, alike in time (a locked login still verifies, against the dummy hash).
        ok = await self.verify_password(user["password_hash"] if user and not locked else self._dummy_hash, password)
        if locked or not user or not ok or not user["is_active"]:
            reason = "locked" if locked else "unknown" if not user else "bad_password" if not ok else "inactive"
            await self.throttle.failed(email, user, reason)
            raise Unauthenticated(BAD_LOGIN)
        org_id = org_id or user["default_organization_id"]
        if org_id is None:
            raise Unauthenticated(BAD_LOGIN)
        async with self.db.unit_of_work(org_id) as uow:
            role = await store.active_membership_role(uow.conn, user["id"], org_id)
            if role is None:
                raise Unauthenticated(BAD_LOGIN)
            await self.throttle.succeeded(uow, email)
            # MFA enabled (and no trusted device token): no tokens yet, a challenge for VerifyMfa.
            challenge = await mfa.login_challenge(uow, user["id"], org_id, device_token)
            if challenge is not None:
                return challenge
            audit_sign_in(uow, SIGNED_IN, user["id"])
            return await self._issue(uow, user["id"], org_id, role, uuid.uuid4())

    # -- refresh ----------------------------------------------------------------------------

    async def refresh(self, refresh_token: str) -> Tokens:
        if not refresh_token:
            raise InvalidArgument.field("refresh_token", "is required")
        parsed = token_rules.parse_refresh_token(refresh_token)
        if parsed is None:
            raise Unauthenticated("invalid refresh token")
        org_id, token_hash = parsed
        reused = False
        async with self.db.unit_of_work(org_id) as uow:
            row = await store.refresh_token_for_update(uow.conn, token_hash)
            if row is None:
                raise Unauthenticated("invalid refresh token")
            if row["used_at"] is not None or row["revoked_at"] is not None:
                # A spent token came back: it was stolen or replayed. End the whole family.
                await store.revoke_family(uow.conn, row["family_id"])
                reused = True
            elif row["expired"]:
                raise Unauthenticated("refresh token expired")
            else:
                await store.mark_refresh_token_used(uow.conn, row["id"])
                role = await store.active_membership_role(uow.conn, row["user_id"], org_id)
                if role is None:
                    await store.revoke_family(uow.conn, row["family_id"])
                    reused = True
                else:
                    tokens = await self._issue(uow, row["user_id"], org_id, role, row["family_id"])
                    # The session's last use, client and address (SessionService lists them).
                    await sessions.stamp_refreshed(uow, org_id, row["family_id"], row["id"])
        if reused:
            raise Unauthenticated("refresh token is no longer valid; sign in again", reason="REFRESH_REVOKED")
        return tokens

    # -- organizations ----------------------------------------------------------------------

    async def get_organization(self, tenant_id: uuid.UUID, org_id: str) -> dict:
        if org_id:
            try:
                wanted = uuid.UUID(org_id)
            except ValueError:
                raise InvalidArgument.field("id", "is not a valid id") from None
        else:
            wanted = tenant_id
        async with self.db.unit_of_work(tenant_id) as uow:
            org = await store.get_organization(uow.conn, wanted)
        if org is None:
            raise NotFound("organization not found")
        return org

    # -- tokens -----------------------------------------------------------------------------

    async def _issue(self, uow: UnitOfWork, user_id: uuid.UUID, org_id: uuid.UUID, role: str,
                     family_id: uuid.UUID) -> Tokens:
        # The membership as it is now, under a share lock (see handlers/grants.py): role,
        # custom role permissions, overrides; `role` from the caller is only what it read earlier.
        granted = await grants.member_grants(uow.conn, org_id, user_id)
        if granted is None:
            raise Unauthenticated("not an active member of this organization", reason="MEMBERSHIP_INACTIVE")
        role, permissions = granted
        claims = token_rules.access_claims(issuer=ISSUER, audience=AUDIENCE, user_id=user_id, org_id=org_id, role=role,
                                           permissions=permissions, family_id=family_id,
                                           now=grants.issue_time(), ttl=self.access_ttl)
        # The organization requires MFA and this user has not enrolled yet: the token may only
        # enroll (identity.self, for MfaService); a new login after enrollment gets the role's permissions.
        enroll_only = await mfa.enroll_only_permissions(uow, user_id, org_id)
        if enroll_only is not None:
            claims["perms"] = enroll_only
        refresh, refresh_hash = token_rules.new_refresh_token(org_id)
        refresh_expires = datetime.now(UTC) + timedelta(seconds=self.refresh_ttl)
        await store.insert_refresh_token(uow.conn, org_id, user_id, family_id, refresh_hash, refresh_expires)
        return Tokens(
            access_token=self.keys.sign(claims),
            access_expires_at=datetime.fromtimestamp(claims["exp"], UTC),
            refresh_token=refresh,
            refresh_expires_at=refresh_expires,
            user_id=user_id,
            organization_id=org_id,
            role=role,
        )
