"""Re-authentication for sensitive changes (ASVS V6; OIDC max_age; RFC 9470 step-up).

Enrolling TOTP, disabling MFA and regenerating backup codes need proof that the person at the
keyboard is the account's owner now, not whoever holds a session: the current password in the
request, or a sign-in (password or MFA) at most MAX_AGE_SECONDS ago, which the access token
says in its `auth_time` claim (set at Login, VerifyMfa, SignUp and AcceptInvitation of a new
account; a refresh and SwitchOrganization keep the session's). ChangePassword always takes the
current password.

Otherwise: UNAUTHENTICATED with reason REAUTHENTICATION_REQUIRED and metadata max_age, as
RFC 9470 answers 401 insufficient_user_authentication: the token is fine but the sign-in too
old; the client asks for the password or signs in again (refreshing does not help). A wrong
password is INVALID_ARGUMENT on current_password, counted by the login throttle like
ChangePassword's.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from chassis.context import Principal
from chassis.errors import InvalidArgument, NotFound, ResourceExhausted, Unauthenticated
from services.identity.handlers import throttle
from services.identity.handlers.caller import Client
from services.identity.handlers.deps import Deps
from services.identity.store import users

# Five minutes, as Keycloak's default maximum authentication age for its required actions.
MAX_AGE_SECONDS = 300
REAUTHENTICATION_FAILED = "identity.user.reauthentication_failed"

# The clock a sign-in's age is measured by (tests move it forward rather than wait).
clock: Callable[[], float] = time.time


def recent(principal: Principal) -> bool:
    return principal.auth_time > 0 and 0 <= clock() - principal.auth_time <= MAX_AGE_SECONDS


async def require(deps: Deps, client: Client, principal: Principal, user_id: uuid.UUID, tenant_id: uuid.UUID,
                  current_password: str) -> None:
    """Passes when current_password is the user's password, or (none given) the sign-in is recent."""
    if not current_password:
        if recent(principal):
            return
        raise Unauthenticated("this change needs a recent sign-in: send current_password, or sign in again",
                              reason="REAUTHENTICATION_REQUIRED", metadata={"max_age": str(MAX_AGE_SECONDS)})
    async with deps.db.unit_of_work(tenant_id) as uow:
        user = await users.credentials(uow.conn, user_id)
    if user is None:
        raise NotFound("account not found")
    await verify_current_password(deps, client, user, current_password, action=REAUTHENTICATION_FAILED)
    await throttle.withdraw(deps.db, user["email"], client)  # a right password gives its attempt back


async def verify_current_password(deps: Deps, client: Client, user: dict, password: str, *, action: str) -> None:
    """The user's current password, checked like a sign-in: counted first (throttle.attempt),
    verified even when locked so a locked account answers like a wrong password in like time;
    INVALID_ARGUMENT on current_password when wrong. The caller gives the attempt back on success
    (throttle.passed in its transaction, or throttle.withdraw)."""
    locked = await throttle.attempt(deps.db, user["email"], client)
    try:
        ok = await deps.passwords.verify(user["password_hash"], password)
    except ResourceExhausted:  # shed before any check: the attempt does not count
        await throttle.withdraw(deps.db, user["email"], client)
        raise
    if locked or not ok:
        await throttle.failed(deps.db, user["email"], user, "locked" if locked else "bad_password", client,
                              action=action)
        raise InvalidArgument.field("current_password", "is incorrect")
