"""Invitation use cases: invite someone to the caller's organization (the link goes out
through comms), list and revoke invitations, and accept one (public: the token is the
credential), which makes the member and, unless their account has MFA, signs them in."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from givance.events.v1 import identity_events_pb2

from chassis.context import Principal
from chassis.db import Database, UnitOfWork
from chassis.errors import Aborted, FailedPrecondition, NotFound, PermissionDenied, Unauthenticated, Violations
from chassis.resource import Keyset, check_request_id, parse_id
from services.identity.domain import accounts as account_rules
from services.identity.domain import members as rules
from services.identity.domain import passwords, roles
from services.identity.handlers import seats
from services.identity.handlers.caller import actor_id
from services.identity.handlers.deps import Deps
from services.identity.handlers.rights import actor_is_owner, publish_member_joined, role_permissions
from services.identity.handlers.tokens import Tokens, issue_tokens
from services.identity.store import invitations as invitation_store
from services.identity.store import members as store
from services.identity.store.invitations import Invitation

INVITATION_CREATED = "identity.invitation.created"
NAME_MAX = 100


@dataclass(frozen=True)
class AcceptResult:
    tokens: Tokens | None  # None when the account has MFA: the member signs in with it


def invitation_state(row: Invitation) -> str:
    return rules.invitation_state(accepted_at=row.accepted_at, revoked_at=row.revoked_at,
                                  expires_at=row.expires_at, now=datetime.now(UTC))


async def create_invitation(deps: Deps, principal: Principal, org: uuid.UUID, *, email: str, role: str,
                            request_id: str) -> Invitation:
    v = Violations()
    if email.strip():
        email = account_rules.normalize_email(email.strip(), "email", v)
    else:
        v.add("email", "is required")
    ref = rules.parse_role(role, "role", v)
    check_request_id(request_id, v)
    v.raise_if_any()
    assert ref is not None
    async with deps.db.unit_of_work(org) as uow:
        if request_id:
            first = await invitation_store.invitation_by_request(uow.conn, org, request_id)
            if first is not None:
                return first
        await store.lock_organization(uow.conn, org)
        if ref.role == roles.OWNER and not await actor_is_owner(uow, org, principal):
            raise PermissionDenied("only an owner may invite an owner", reason="OWNER_REQUIRED")
        rules.check_grantable(principal.permissions, list(await role_permissions(uow, org, ref)), "role")
        if await store.member_by_email(uow.conn, org, email) is not None:
            raise FailedPrecondition(f"{email} is already a member", reason="ALREADY_MEMBER")
        await invitation_store.revoke_pending_invitations(uow.conn, org, email)
        await seats.check_seat_for_invitation(uow, org)  # the plan's seats (billing's entitlements, replicated)
        token, token_hash = rules.new_invitation_token(org)
        expires = datetime.now(UTC) + rules.INVITATION_TTL
        row = await invitation_store.insert_invitation(
            uow.conn, org_id=org, invitation_id=uuid.uuid4(), email=email, role=ref.role,
            custom_role_id=ref.custom_role_id, token_hash=token_hash, invited_by=actor_id(principal),
            expires_at=expires, request_id=request_id or None)
        if row is None:  # the same request_id, committed meanwhile
            raise Aborted("a request with this request_id is in flight; retry", reason="REQUEST_IN_FLIGHT")
        link = f"{deps.settings.public_url.rstrip('/')}/invitations/accept?token={quote(token, safe='')}"
        event = identity_events_pb2.InvitationCreatedEvent(
            invitation_id=str(row.id), email=email, role=ref.api_name,
            sealed_accept_link=deps.seal_for_comms(INVITATION_CREATED, str(row.id), link))
        event.expire_time.FromDatetime(expires)
        uow.publish(INVITATION_CREATED, event, aggregate_type="invitation", aggregate_id=str(row.id))
        uow.audit("identity.invitation.create", "invitation", str(row.id),
                  after={"email": email, "role": ref.api_name, "expires_at": expires.isoformat()})
    return row


async def list_invitations(db: Database, org: uuid.UUID, page_size: int,
                           page_token: str) -> tuple[list[Invitation], str]:
    page = Keyset.of(page_size, page_token, ("invitations",), (datetime.fromisoformat, uuid.UUID))
    async with db.unit_of_work(org) as uow:
        after = tuple(page.after) if page.after else None
        rows = await invitation_store.page_invitations(uow.conn, org, after, page.limit)
    return page.cut(rows, lambda r: (r.created_at, r.id))


async def revoke_invitation(db: Database, org: uuid.UUID, invitation_id: str) -> Invitation:
    iid = parse_id(invitation_id, "id")
    async with db.unit_of_work(org) as uow:
        row = await invitation_store.get_invitation(uow.conn, org, iid, for_update=True)
        if row is None:
            raise NotFound(f"invitation {invitation_id} not found")
        if row.accepted_at is not None:
            raise FailedPrecondition("this invitation was already accepted; remove the member instead",
                                     reason="INVITATION_ACCEPTED")
        if row.revoked_at is not None:
            return row
        updated = await invitation_store.set_invitation_revoked(uow.conn, org, iid)
        uow.audit("identity.invitation.revoke", "invitation", str(iid),
                  before={"state": invitation_state(row)}, after={"state": rules.INVITATION_REVOKED})
    return updated


async def accept_invitation(deps: Deps, *, token: str, password: str, first_name: str, last_name: str,
                            access_token: str = "") -> AcceptResult:
    """For an email that already has an account, the link alone is not enough (whoever reads
    the mail, or the link in a log, would join that account to the organization): the call
    carries the access token of that account, from any organization, so its own sign-in (and
    second factor) vouches for it."""
    v = Violations()
    if not token.strip():
        v.add("token", "is required")
    v.check_text("first_name", first_name, NAME_MAX)
    v.check_text("last_name", last_name, NAME_MAX)
    v.raise_if_any()
    parsed = rules.parse_invitation_token(token)
    if parsed is None:
        raise NotFound("invitation not found")
    org, token_hash = parsed
    # First look: which invitation, and whether its email has an account (then no password).
    async with deps.db.unit_of_work(org) as uow:
        invitation = await _acceptable(uow, org, token_hash)
        user = await store.user_by_email(uow.conn, invitation.email)
    signed_in = await deps.verifier.verify(access_token) if access_token else None
    if user is not None:
        _require_sign_in(signed_in, user["id"])
    password_hash = None
    if user is None:
        if not password:
            v.add("password", "is required: this email has no account yet")
        else:
            passwords.check_password(password, "password", v, email=invitation.email,
                                     first_name=first_name, last_name=last_name)
        v.raise_if_any()
        password_hash = await deps.passwords.hash(password)
    async with deps.db.unit_of_work(org) as uow:
        invitation = await _acceptable(uow, org, token_hash)  # again, locked: accepted once
        await store.lock_organization(uow.conn, org)
        user = await store.user_by_email(uow.conn, invitation.email)
        if user is None:
            if password_hash is None:  # the account went away between the two looks
                raise FailedPrecondition("the account changed; try again", reason="ACCOUNT_CHANGED")
            user_id = uuid.uuid4()
            await store.insert_invited_user(uow.conn, user_id, invitation.email, password_hash,
                                            first_name.strip(), last_name.strip(), org)
        else:
            user_id = user["id"]
            _require_sign_in(signed_in, user_id)
            if not user["is_active"]:
                raise FailedPrecondition("this account is disabled", reason="ACCOUNT_DISABLED")
            if await store.get_member(uow.conn, org, user_id) is not None:
                raise FailedPrecondition("this account is already a member of the organization",
                                         reason="ALREADY_MEMBER")
            await store.mark_email_verified(uow.conn, user_id)  # the link proves the address
            if user["default_organization_id"] is None:
                await store.set_default_organization(uow.conn, user_id, org)
        if invitation.role == roles.CUSTOM and invitation.custom_role_id is None:
            raise FailedPrecondition("the invitation's role was deleted; ask for a new invitation",
                                     reason="ROLE_DELETED")
        await store.insert_member(uow.conn, org, user_id, invitation.role, invitation.custom_role_id,
                                  invitation.invited_by)
        await invitation_store.set_invitation_accepted(uow.conn, org, invitation.id, user_id)
        publish_member_joined(uow, org, user_id, invitation.role_name)
        uow.audit("identity.invitation.accept", "invitation", str(invitation.id), actor_id=str(user_id),
                  actor_kind="user", after={"user_id": str(user_id), "email": invitation.email,
                                            "role": invitation.role_name, "new_account": user is None})
        # A new account signed in just now (its password); an existing one keeps the sign-in time
        # of the token that vouched for it.
        auth_time = time.time() if signed_in is None or user is None else (signed_in.auth_time or None)
        tokens = await issue_tokens(deps, uow, user_id, org, uuid.uuid4(), auth_time=auth_time)
    return AcceptResult(tokens=tokens)


def _require_sign_in(signed_in: Principal | None, user_id: uuid.UUID) -> None:
    if signed_in is None:
        raise Unauthenticated("this email already has an account: accept the invitation signed in to it "
                              "(its access token in 'authorization')", reason="SIGN_IN_REQUIRED")
    if signed_in.kind != "user" or signed_in.subject != str(user_id):
        raise PermissionDenied("this invitation is for another account; sign in to that one",
                               reason="INVITATION_FOR_ANOTHER_ACCOUNT")


async def _acceptable(uow: UnitOfWork, org: uuid.UUID, token_hash: bytes) -> Invitation:
    invitation = await invitation_store.invitation_by_token(uow.conn, org, token_hash)
    if invitation is None:
        raise NotFound("invitation not found")
    rules.check_acceptable(invitation_state(invitation))
    return invitation

