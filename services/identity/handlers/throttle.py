"""Login throttling as the sign-in use cases apply it (rules in domain/throttle.py)."""

from __future__ import annotations

import logging
import secrets
import uuid

from chassis import context
from chassis.db import Database, UnitOfWork
from services.identity.domain import throttle as rules
from services.identity.store import throttle as store

log = logging.getLogger(__name__)

SIGNED_IN = "identity.user.signed_in"
SIGN_IN_FAILED = "identity.user.sign_in_failed"


def _client_address() -> str:
    ctx = context.current_or_none()
    return ctx.peer if ctx else ""


class LoginThrottle:
    def __init__(self, db: Database):
        self.db = db

    def _keys(self, email: str) -> list[tuple[str, rules.Limit]]:
        keys = [(rules.account_key(email), rules.ACCOUNT)]
        address = rules.address_key(_client_address())
        if address:
            keys.append((address, rules.ADDRESS))
        return keys

    async def locked(self, uow: UnitOfWork, email: str) -> bool:
        """Whether the account or the client's address is locked now."""
        return bool(await store.locked_keys(uow.conn, [k for k, _ in self._keys(email)]))

    async def failed(self, email: str, user: dict | None, reason: str, *, action: str = SIGN_IN_FAILED) -> None:
        """Counts a failed attempt against the account and the address (locking them when the
        back-off says so), and audits it for a known user (in their default organization)."""
        tenant = user.get("default_organization_id") if user else None
        async with self.db.unit_of_work(tenant) as uow:
            for key, limit in self._keys(email):
                failures = await store.count_failure(uow.conn, key, rules.WINDOW)
                lock_for = limit.lock_for(failures)
                if lock_for is not None:
                    await store.lock(uow.conn, key, lock_for)
                    log.info("login throttle: %s locked for %s after %d failures", key.split(":")[0], lock_for,
                             failures)
            if secrets.randbelow(100) == 0:
                await store.prune(uow.conn, rules.WINDOW)
            if user is not None and tenant is not None:
                audit_sign_in(uow, action, user["id"], reason)

    async def succeeded(self, uow: UnitOfWork, email: str) -> None:
        """A sign-in passed the password: the account's count starts again (the address's does not)."""
        await store.clear(uow.conn, rules.account_key(email))

    async def forgive(self, uow: UnitOfWork, email: str) -> None:
        """The user proved control of the account another way (a reset link): the count starts again."""
        await store.clear(uow.conn, rules.account_key(email))


def audit_sign_in(uow: UnitOfWork, action: str, user_id: uuid.UUID, reason: str = "") -> None:
    """Audits a sign-in (SIGNED_IN) or a failed one (the unit of work must have a tenant)."""
    ctx = context.current_or_none()
    after = {"reason": reason} if reason else {}
    if ctx and ctx.user_agent:
        after["user_agent"] = ctx.user_agent[:300]
    uow.audit(action, "user", str(user_id), after=after or None, actor_id=str(user_id), actor_kind="user")
