"""Who is calling: the servicer reads it from the request context (chassis.context) and passes it
to the use case explicitly: the principal and tenant, and for the sign-in paths the client."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from chassis.context import Principal
from chassis.errors import PermissionDenied


@dataclass(frozen=True)
class Client:
    """Where a request came from: the client's address (x-forwarded-for from a trusted gateway,
    else the gRPC peer) and its user agent."""

    address: str = ""
    user_agent: str = ""


def user_id_or_none(principal: Principal | None) -> uuid.UUID | None:
    """The calling user's id; None for a service account (or no caller)."""
    if principal is None or principal.kind != "user":
        return None
    try:
        return uuid.UUID(principal.subject)
    except ValueError:
        return None


def require_user(principal: Principal | None, message: str) -> uuid.UUID:
    """The calling user's id; PERMISSION_DENIED (USER_REQUIRED) with `message` for anyone else."""
    user_id = user_id_or_none(principal)
    if user_id is None:
        raise PermissionDenied(message, reason="USER_REQUIRED")
    return user_id


def session_id(principal: Principal) -> uuid.UUID | None:
    """The session (refresh family) the caller's access token belongs to, if any."""
    try:
        return uuid.UUID(principal.session_id) if principal.session_id else None
    except ValueError:
        return None


def actor_id(principal: Principal) -> uuid.UUID:
    """The caller as the actor recorded on a row (the nil id when it is not a user)."""
    try:
        return uuid.UUID(principal.subject)
    except ValueError:
        return uuid.UUID(int=0)
