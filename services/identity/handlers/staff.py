"""Staff profile use cases: a profile per membership (email signature, connected mailboxes).

A mailbox's OAuth refresh token is sealed with the keyring (AES-256-GCM); the associated data
binds it to the organization, the member and the provider, so a sealed value copied to
another row does not open. No RPC returns a token; only the mailbox address is shown.
"""

from __future__ import annotations

import uuid

from chassis.context import Principal
from chassis.crypto import Keyring
from chassis.db import Database
from chassis.errors import InvalidArgument, NotFound, PermissionDenied, Violations
from services.identity.domain import accounts as account_rules
from services.identity.domain import members as member_rules
from services.identity.store import members as member_store
from services.identity.store import staff as store

SIGNATURE_MAX = 10_000
REFRESH_TOKEN_MAX = 4096
PROVIDERS = tuple(store.PROVIDER_COLUMNS)


def token_aad(org_id: uuid.UUID, user_id: uuid.UUID, provider: str) -> bytes:
    return f"identity.staff:{org_id}:{user_id}:{provider}".encode()


def _caller(principal: Principal) -> uuid.UUID:
    if principal.kind != "user":
        raise PermissionDenied("only a member has a staff profile", reason="USER_REQUIRED")
    return uuid.UUID(principal.subject)


def _default(user_id: uuid.UUID, member: dict) -> dict:
    return {"user_id": user_id, "email_signature": "", "gmail_email": None, "microsoft_email": None,
            "is_active": member["status"] == member_rules.ACTIVE, "updated_at": None}


class Staff:
    def __init__(self, db: Database, keyring: Keyring):
        self.db = db
        self.keyring = keyring

    async def _profile(self, uow, org: uuid.UUID, user_id: uuid.UUID) -> dict:
        member = await member_store.get_member(uow.conn, org, user_id)
        if member is None:
            raise NotFound(f"member {user_id} not found")
        return await store.get(uow.conn, org, user_id) or _default(user_id, member)

    async def get(self, principal: Principal, org: uuid.UUID, user_id: str) -> dict:
        if user_id:
            try:
                target = uuid.UUID(user_id)
            except ValueError:
                raise InvalidArgument.field("user_id", "is not a valid id") from None
        else:
            target = _caller(principal)
        if str(target) != principal.subject and not principal.can("identity.members.read"):
            raise PermissionDenied("reading another member's profile needs identity.members.read",
                                   reason="PERMISSION_MISSING", metadata={"permission": "identity.members.read"})
        async with self.db.unit_of_work(org) as uow:
            return await self._profile(uow, org, target)

    async def update_signature(self, principal: Principal, org: uuid.UUID, signature: str) -> dict:
        me = _caller(principal)
        if len(signature) > SIGNATURE_MAX:
            raise InvalidArgument.field("email_signature", f"must be at most {SIGNATURE_MAX} characters")
        async with self.db.unit_of_work(org) as uow:
            before = await self._profile(uow, org, me)
            await store.set_signature(uow.conn, org, me, signature)
            uow.audit("identity.staff.update", "staff", str(me), before={"email_signature": before["email_signature"]},
                      after={"email_signature": signature})
            return await store.get(uow.conn, org, me)

    async def connect_mailbox(self, principal: Principal, org: uuid.UUID, *, provider: str, email: str,
                              refresh_token: str) -> dict:
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
        sealed = self.keyring.seal(refresh_token.strip().encode(), token_aad(org, me, provider))
        async with self.db.unit_of_work(org) as uow:
            await self._profile(uow, org, me)
            await store.set_mailbox(uow.conn, org, me, provider, email, sealed)
            uow.audit("identity.staff.mailbox_connect", "staff", str(me), after={"provider": provider, "email": email})
            return await store.get(uow.conn, org, me)

    async def disconnect_mailbox(self, principal: Principal, org: uuid.UUID, provider: str) -> dict:
        me = _caller(principal)
        if provider not in PROVIDERS:
            raise InvalidArgument.field("provider", f"must be one of {', '.join(PROVIDERS)}")
        async with self.db.unit_of_work(org) as uow:
            before = await self._profile(uow, org, me)
            email_col = store.PROVIDER_COLUMNS[provider][0]
            if before.get(email_col) is None:
                return before
            await store.set_mailbox(uow.conn, org, me, provider, None, None)
            uow.audit("identity.staff.mailbox_disconnect", "staff", str(me),
                      before={"provider": provider, "email": before[email_col]})
            return await store.get(uow.conn, org, me)

    async def mailbox_refresh_token(self, org: uuid.UUID, user_id: uuid.UUID, provider: str) -> str | None:
        """The clear refresh token, for the code that sends mail on the member's behalf (never an RPC reply)."""
        async with self.db.unit_of_work(org) as uow:
            sealed = await store.sealed_refresh_token(uow.conn, org, user_id, provider)
        if sealed is None:
            return None
        return self.keyring.open(sealed, token_aad(org, user_id, provider)).decode()
