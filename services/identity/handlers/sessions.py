"""Session use cases: list and revoke the caller's sessions, log out, and stamp a refresh.

A session is a refresh-token family (identity.refresh_tokens.family_id); the access token
names it in its "sid" claim. Ending a session (logout, RevokeSession, a password reset or
change, a refresh token used twice) revokes the family's refresh token and, through
EndedSessions, its access tokens on every service: recorded in identity.revocations and
broadcast as `identity.session.revoked` in the same transaction, applied to this process's
list once it commits (chassis.revocation). Minting tokens from an access token
(SwitchOrganization) needs a live session and no password change since the token was issued
(require_live_session), as Keycloak and Zitadel check the session behind a token exchange.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

from givance.events.v1 import identity_events_pb2

from chassis.context import Principal
from chassis.db import Database, UnitOfWork
from chassis.errors import FailedPrecondition, InvalidArgument, NotFound, Unauthenticated
from chassis.revocation import SESSION, RevocationList
from services.identity.handlers import grants
from services.identity.handlers.caller import Client, user_id_or_none
from services.identity.handlers.deps import Deps
from services.identity.store import revocations as revocation_store
from services.identity.store import sessions as store
from services.identity.store.sessions import Session


async def list_sessions(db: Database, principal: Principal) -> list[Session]:
    user_id = user_id_or_none(principal)
    if user_id is None:
        return []
    async with db.unit_of_work(principal.tenant_id) as uow:
        rows = await store.live_sessions(uow.conn, principal.tenant_id, user_id)
    return [replace(row, current=str(row.family_id) == principal.session_id) for row in rows]


SESSION_REVOKED = "identity.session.revoked"
# SessionRevokedEvent.reason
LOGOUT, REVOKED, PASSWORD_RESET, PASSWORD_CHANGED, REFRESH_REUSED, MEMBERSHIP_ENDED = (
    "logout", "revoked", "password_reset", "password_changed", "refresh_reused", "membership_ended")


class EndedSessions:
    """The sessions one unit of work ends: recorded and announced in it, and applied to this
    process's revocation list after it commits.

        ended = EndedSessions(deps.revocations)
        async with db.unit_of_work(org) as uow:
            ...revoke the family...
            await ended.add(uow, org, user_id, family_id, LOGOUT)
        ended.apply()
    """

    def __init__(self, revocations: RevocationList):
        self.revocations = revocations
        self.pending: list[tuple[str, float]] = []

    async def add(self, uow: UnitOfWork, org: uuid.UUID, user_id: uuid.UUID, family_id: uuid.UUID,
                  reason: str) -> None:
        """Call after the family's refresh tokens were revoked (their rows are locked): no token
        of the session can be issued after now."""
        not_before = grants.issue_time()
        horizon = self.revocations.horizon
        event = identity_events_pb2.SessionRevokedEvent(session_id=str(family_id), organization_id=str(org),
                                                        user_id=str(user_id), reason=reason)
        event.not_before.FromNanoseconds(int(not_before * 1_000_000) * 1000)
        event.expire_time.FromNanoseconds(int((not_before + horizon) * 1e9))
        uow.publish(SESSION_REVOKED, event, aggregate_type="session", aggregate_id=str(family_id), tenant_id=org)
        await revocation_store.record(uow.conn, SESSION, org, str(family_id), not_before, horizon)
        self.pending.append((str(family_id), not_before))

    def apply(self) -> None:
        """After the commit: this process refuses the session's tokens at once."""
        for sid, not_before in self.pending:
            self.revocations.revoke_session(sid, not_before, not_before + self.revocations.horizon)


async def require_live_session(uow: UnitOfWork, principal: Principal) -> uuid.UUID:
    """Before minting tokens from an access token: its session is still live (not ended, not
    expired, not revoked by refresh-token reuse) and the password has not changed since the
    token was issued. The user's id, or UNAUTHENTICATED."""
    user_id = user_id_or_none(principal)
    try:
        family_id = uuid.UUID(principal.session_id)
    except ValueError:
        family_id = None
    if user_id is None or family_id is None:
        raise Unauthenticated("this access token belongs to no session", reason="SESSION_REVOKED")
    live, password_changed = await store.standing(uow.conn, principal.tenant_id, user_id, family_id)
    if not live:
        raise Unauthenticated("this session has ended; sign in again", reason="SESSION_REVOKED")
    if password_changed is not None and password_changed > principal.issued_at:
        raise Unauthenticated("the password changed since this token was issued; sign in again",
                              reason="PASSWORD_CHANGED")
    return user_id


async def revoke_session(deps: Deps, principal: Principal, session_id: str) -> None:
    if not session_id:
        raise InvalidArgument.field("id", "is required")
    try:
        family_id = uuid.UUID(session_id)
    except ValueError:
        raise InvalidArgument.field("id", "is not a valid session id") from None
    user_id = user_id_or_none(principal)
    ended = EndedSessions(deps.revocations)
    async with deps.db.unit_of_work(principal.tenant_id) as uow:
        # Another user's session, or another organization's: not found, never "not yours".
        if user_id is None or not await store.family_of_user_exists(uow.conn, principal.tenant_id, user_id,
                                                                    family_id):
            raise NotFound(f"session {session_id} not found")
        revoked = await store.revoke_family(uow.conn, principal.tenant_id, user_id, family_id)
        await ended.add(uow, principal.tenant_id, user_id, family_id, REVOKED)
        uow.audit("identity.session.revoke", "session", str(family_id), after={"revoked_tokens": revoked})
    ended.apply()


async def logout(deps: Deps, principal: Principal) -> None:
    """Ends the session the caller's access token belongs to (idempotent)."""
    user_id = user_id_or_none(principal)
    if user_id is None or not principal.session_id:
        raise FailedPrecondition("this access token belongs to no session", reason="NO_SESSION")
    try:
        family_id = uuid.UUID(principal.session_id)
    except ValueError:
        raise FailedPrecondition("this access token belongs to no session", reason="NO_SESSION") from None
    ended = EndedSessions(deps.revocations)
    async with deps.db.unit_of_work(principal.tenant_id) as uow:
        revoked = await store.revoke_family(uow.conn, principal.tenant_id, user_id, family_id)
        if revoked:
            await ended.add(uow, principal.tenant_id, user_id, family_id, LOGOUT)
            uow.audit("identity.session.logout", "session", str(family_id))
    ended.apply()


async def stamp_refreshed(uow: UnitOfWork, org_id: uuid.UUID, family_id: uuid.UUID, spent_token_id: uuid.UUID,
                          client: Client) -> None:
    """Called by a refresh, in its unit of work, after the new token of the family was issued:
    records the client (user agent, address) and keeps the session's start."""
    await store.stamp_refreshed(uow.conn, org_id, family_id, spent_token_id, client.user_agent, client.address)
