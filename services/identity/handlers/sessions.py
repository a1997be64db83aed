"""Session use cases: list and revoke the caller's sessions, log out, and stamp a refresh.

A session is a refresh-token family (identity.refresh_tokens.family_id); the access token
names it in its "sid" claim. Revoking a family refuses its refresh token at once; the
access tokens already issued for it stay valid until they expire (at most the access-token
lifetime).
"""

from __future__ import annotations

import uuid

from chassis import context
from chassis.context import Principal
from chassis.db import Database, UnitOfWork
from chassis.errors import FailedPrecondition, InvalidArgument, NotFound
from services.identity.store import sessions as store


def _user_id(principal: Principal) -> uuid.UUID | None:
    if principal.kind != "user":
        return None
    try:
        return uuid.UUID(principal.subject)
    except ValueError:
        return None


async def list_sessions(db: Database, principal: Principal) -> list[dict]:
    user_id = _user_id(principal)
    if user_id is None:
        return []
    async with db.unit_of_work(principal.tenant_id) as uow:
        rows = await store.live_sessions(uow.conn, principal.tenant_id, user_id)
    for row in rows:
        row["current"] = str(row["family_id"]) == principal.session_id
    return rows


async def revoke_session(db: Database, principal: Principal, session_id: str) -> None:
    if not session_id:
        raise InvalidArgument.field("id", "is required")
    try:
        family_id = uuid.UUID(session_id)
    except ValueError:
        raise InvalidArgument.field("id", "is not a valid session id") from None
    user_id = _user_id(principal)
    async with db.unit_of_work(principal.tenant_id) as uow:
        # Another user's session, or another organization's: not found, never "not yours".
        if user_id is None or not await store.family_of_user_exists(uow.conn, principal.tenant_id, user_id,
                                                                    family_id):
            raise NotFound(f"session {session_id} not found")
        revoked = await store.revoke_family(uow.conn, principal.tenant_id, user_id, family_id)
        uow.audit("identity.session.revoke", "session", str(family_id), after={"revoked_tokens": revoked})


async def logout(db: Database, principal: Principal) -> None:
    """Ends the session the caller's access token belongs to (idempotent)."""
    user_id = _user_id(principal)
    if user_id is None or not principal.session_id:
        raise FailedPrecondition("this access token belongs to no session", reason="NO_SESSION")
    try:
        family_id = uuid.UUID(principal.session_id)
    except ValueError:
        raise FailedPrecondition("this access token belongs to no session", reason="NO_SESSION") from None
    async with db.unit_of_work(principal.tenant_id) as uow:
        revoked = await store.revoke_family(uow.conn, principal.tenant_id, user_id, family_id)
        if revoked:
            uow.audit("identity.session.logout", "session", str(family_id))


async def stamp_refreshed(uow: UnitOfWork, org_id: uuid.UUID, family_id: uuid.UUID,
                          spent_token_id: uuid.UUID) -> None:
    """Called by a refresh, in its unit of work, after the new token of the family was issued:
    records the client (user agent, address) and keeps the session's start."""
    ctx = context.current_or_none()
    await store.stamp_refreshed(uow.conn, org_id, family_id, spent_token_id,
                                ctx.user_agent if ctx else "", ctx.peer if ctx else "")
