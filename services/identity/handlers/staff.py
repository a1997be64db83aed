"""Staff profile use cases: a profile per membership (email signature, connected mailboxes).

A mailbox's OAuth refresh token is sealed with the keyring (AES-256-GCM); the associated data
binds it to the organization, the member and the provider, so a sealed value copied to
another row does not open. No RPC returns a token; only the mailbox address is shown.
"""

from __future__ import annotations

import uuid

from chassis.context import Principal
from chassis.db import Database, UnitOfWork
from chassis.errors import InvalidArgument, NotFound, PermissionDenied, Violations
from chassis.resource import parse_optional_id
from services.identity.domain import accounts as account_rules
from services.identity.domain import members as member_rules
from services.identity.handlers.caller import require_user
from services.identity.handlers.deps import Deps
from services.identity.store import members as member_store
from services.identity.store import staff as store
from services.identity.store.members import Member
from services.identity.store.staff import StaffProfile

SIGNATURE_MAX = 10_000
REFRESH_TOKEN_MAX = 4096
PROVIDERS = tuple(store.PROVIDER_COLUMNS)


def token_aad(org_id: uuid.UUID, user_id: uuid.UUID, provider: str) -> bytes:
    return f"identity.staff:{org_id}:{user_id}:{provider}".encode()


def _caller(principal: Principal) -> uuid.UUID:
    return require_user(principal, "only a member has a staff profile")


def _default(user_id: uuid.UUID, member: Member) -> StaffProfile:
    return StaffProfile(user_id=user_id, email_signature="", gmail_email=None, microsoft_email=None,
                        is_active=member.status == member_rules.ACTIVE)


async def _profile(uow: UnitOfWork, org: uuid.UUID, user_id: uuid.UUID) -> StaffProfile:
    member = await member_store.get_member(uow.conn, org, user_id)
    if member is None:
        raise NotFound(f"member {user_id} not found")
    return await store.get(uow.conn, org, user_id) or _default(user_id, member)


async def get(db: Database, principal: Principal, org: uuid.UUID, user_id: str) -> StaffProfile:
    target = parse_optional_id(user_id, "user_id") or _caller(principal)
    if str(target) != principal.subject and not principal.can("identity.members.read"):
        raise PermissionDenied("reading another member's profile needs identity.members.read",
                               reason="PERMISSION_MISSING", metadata={"permission": "identity.members.read"})
    async with db.unit_of_work(org) as uow:
        return await _profile(uow, org, target)


async def update_signature(db: Database, principal: Principal, org: uuid.UUID, signature: str) -> StaffProfile:
    me = _caller(principal)
    if len(signature) > SIGNATURE_MAX:
        raise InvalidArgument.field("email_signature", f"must be at most {SIGNATURE_MAX} characters")
    async with db.unit_of_work(org) as uow:
        before = await _profile(uow, org, me)
        await store.set_signature(uow.conn, org, me, signature)
        uow.audit("identity.staff.update", "staff", str(me), before={"email_signature": before.email_signature},
                  after={"email_signature": signature})
        return await store.get(uow.conn, org, me)


async def connect_mailbox(deps: Deps, principal: Principal, org: uuid.UUID, *, provider: str, email: str,
                          refresh_token: str) -> StaffProfile:
    me = _caller(principal)
    v = Violations()
    if provider not in PROVIDERS:
        v.add("provider", f"must be one of {', '.join(PROVIDERS)}")
    if email.strip():
        email = account_rules.normalize_email(email.strip(), "email", v)
    else:
        v.add("email", "is required")
    if not refresh_token.strip():
        v.add("refresh_token", "is required")
    elif len(refresh_token) > REFRESH_TOKEN_MAX:
        v.add("refresh_token", f"must be at most {REFRESH_TOKEN_MAX} characters")
    v.raise_if_any()
    sealed = deps.keyring.seal(refresh_token.strip().encode(), token_aad(org, me, provider))
    async with deps.db.unit_of_work(org) as uow:
        await _profile(uow, org, me)
        await store.set_mailbox(uow.conn, org, me, provider, email, sealed)
        uow.audit("identity.staff.mailbox_connect", "staff", str(me), after={"provider": provider, "email": email})
        return await store.get(uow.conn, org, me)


async def disconnect_mailbox(db: Database, principal: Principal, org: uuid.UUID, provider: str) -> StaffProfile:
    me = _caller(principal)
    if provider not in PROVIDERS:
        raise InvalidArgument.field("provider", f"must be one of {', '.join(PROVIDERS)}")
    async with db.unit_of_work(org) as uow:
        before = await _profile(uow, org, me)
        if before.mailbox(provider) is None:
            return before
        await store.set_mailbox(uow.conn, org, me, provider, None, None)
        uow.audit("identity.staff.mailbox_disconnect", "staff", str(me),
                  before={"provider": provider, "email": before.mailbox(provider)})
        return await store.get(uow.conn, org, me)


async def mailbox_refresh_token(deps: Deps, org: uuid.UUID, user_id: uuid.UUID, provider: str) -> str | None:
    """The clear refresh token, for the code that sends mail on the member's behalf (never an RPC reply)."""
    async with deps.db.unit_of_work(org) as uow:
        sealed = await store.sealed_refresh_token(uow.conn, org, user_id, provider)
    if sealed is None:
        return None
    return deps.keyring.open(sealed, token_aad(org, user_id, provider)).decode()
