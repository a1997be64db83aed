"""The caller of the RPC being served, read once from the request context (set by the chassis
interceptor) and handed to the use cases explicitly."""

from __future__ import annotations

import uuid

from chassis import context
from chassis.context import Principal
from services.identity.handlers.caller import Client


def caller() -> tuple[Principal, uuid.UUID]:
    """The verified principal and the tenant of an authenticated RPC."""
    ctx = context.current()
    return ctx.principal, ctx.tenant_id


def bearer_token(ctx) -> str:
    """The access token the caller of a public method sent (`authorization: Bearer`), not yet verified."""
    for key, value in ctx.invocation_metadata() or ():
        if key == "authorization" and value.startswith("Bearer "):
            return value[7:].strip()
    return ""


def client() -> Client:
    """Where the request came from (address and user agent), for the sign-in paths' throttle and audit."""
    ctx = context.current_or_none()
    return Client(address=ctx.peer, user_agent=ctx.user_agent) if ctx else Client()
