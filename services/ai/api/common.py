"""What every ai servicer reads from the request context."""

from __future__ import annotations

import uuid

from chassis import context


def tenant() -> uuid.UUID:
    return context.current().tenant_id


def user() -> uuid.UUID | None:
    """The calling user's id (None for a service account)."""
    p = context.current().principal
    if p is None or p.kind != "user":
        return None
    try:
        return uuid.UUID(p.subject)
    except ValueError:
        return None


def forwarded() -> tuple[tuple[str, str], ...]:
    """The caller's own credentials, for calls to crm on their behalf (never ai's own)."""
    ctx = context.current()
    return (("authorization", f"Bearer {ctx.token}"), ("x-tenant-id", str(ctx.tenant_id)),
            ("x-request-id", ctx.request_id))
