"""Login throttling as the sign-in use cases apply it (rules in domain/throttle.py)."""

from __future__ import annotations

import logging
import secrets
import uuid

from chassis.db import Database, UnitOfWork
from services.identity.domain import throttle as rules
from services.identity.handlers.caller import Client
from services.identity.store import throttle as store

log = logging.getLogger(__name__)

SIGNED_IN = "identity.user.signed_in"
SIGN_IN_FAILED = "identity.user.sign_in_failed"


def _keys(email: str, client: Client) -> list[tuple[str, rules.Limit]]:
    keys = [(rules.account_key(email), rules.ACCOUNT)]
    address = rules.address_key(client.address)
    if address:
        keys.append((address, rules.ADDRESS))
    return keys


async def attempt(db: Database, email: str, client: Client) -> bool:
    """Counts a sign-in attempt against the account and the client's address before its password
    is verified, and returns whether either was locked (then the attempt must fail, alike).

    The check and the count are one transaction holding the keys' rows (store.claim), so
    concurrent attempts on an account queue there: however many arrive at once, at most the
    allowance is let through to a password check before the lock is set. An attempt whose password
    passes gives its count back (`succeeded`, `passed`)."""
    keys = _keys(email, client)
    async with db.unit_of_work(None) as uow:
        state = await store.claim(uow.conn, [k for k, _ in keys], rules.WINDOW)
        locked = False
        for key, limit in keys:
            failures, was_locked = state[key]
            locked = locked or was_locked
            lock_for = limit.lock_for(failures + 1)
            await store.set_failures(uow.conn, key, failures + 1, lock_for)
            if lock_for is not None and not was_locked:
                log.info("login throttle: %s locked for %s after %d failures", key.split(":")[0], lock_for,
                         failures + 1)
        if secrets.randbelow(100) == 0:
            await store.prune(uow.conn, rules.WINDOW)
    return locked


async def failed(db: Database, email: str, user: dict | None, reason: str, client: Client, *,
                 action: str = SIGN_IN_FAILED) -> None:
    """Audits a failed attempt for a known user (in their default organization); `attempt` has
    counted it already."""
    tenant = user.get("default_organization_id") if user else None
    if user is None or tenant is None:
        return
    async with db.unit_of_work(tenant) as uow:
        audit_sign_in(uow, action, user["id"], client, reason)


async def succeeded(uow: UnitOfWork, email: str, client: Client) -> None:
    """A sign-in passed the password: the account's count starts again; the address gets back the
    attempt counted for it (an address's count only runs out otherwise: one good account must not
    clear an address that tries many)."""
    await store.clear(uow.conn, rules.account_key(email))
    await passed(uow, client)


async def passed(uow: UnitOfWork, client: Client, email: str = "") -> None:
    """A password check passed (a password change, a re-authentication): the attempt counted for
    the address, and for the account when `email` is given, is taken back."""
    address = rules.address_key(client.address)
    if address:
        await store.refund(uow.conn, address, rules.ADDRESS.max_failures)
    if email:
        await store.refund(uow.conn, rules.account_key(email), rules.ACCOUNT.max_failures)


async def forgive(uow: UnitOfWork, email: str) -> None:
    """The user proved control of the account another way (a reset link): the count starts again."""
    await store.clear(uow.conn, rules.account_key(email))


async def withdraw(db: Database, email: str, client: Client) -> None:
    """An attempt counted by `attempt` never reached its password check (shed under load): its
    count is taken back from the account and the address."""
    async with db.unit_of_work(None) as uow:
        await passed(uow, client, email)


def audit_sign_in(uow: UnitOfWork, action: str, user_id: uuid.UUID, client: Client, reason: str = "") -> None:
    """Audits a sign-in (SIGNED_IN) or a failed one (the unit of work must have a tenant)."""
    after = {"reason": reason} if reason else {}
    if client.user_agent:
        after["user_agent"] = client.user_agent[:300]
    uow.audit(action, "user", str(user_id), after=after or None, actor_id=str(user_id), actor_kind="user")
