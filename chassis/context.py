"""The request context: who is calling, for which tenant, under which request id."""

from __future__ import annotations

import contextvars
import uuid
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified caller, from the access token."""

    subject: str  # user id, or service account id
    tenant_id: uuid.UUID
    role: str
    permissions: tuple[str, ...]
    token_id: str = ""
    expires_at: float = 0.0
    kind: str = "user"
    issued_at: float = 0.0
    session_id: str = ""
    # When the user last proved who they are (password or MFA), OIDC's auth_time; 0 if unknown.
    auth_time: float = 0.0
    # Who acts, when not the subject itself (RFC 8693's `act`): "service:crm" on a platform
    # service's token for a tenant (chassis.tenant_tokens); audit entries name it.
    actor: str = ""

    def can(self, permission: str) -> bool:
        return permission_granted(self.permissions, permission)


# Permissions of the platform's operators (signing keys, KYC review, ...): granted only by an
# operator's flag, never by a tenant role, so "*" does not cover them; "platform.*" does.
PLATFORM_PREFIX = "platform."


def permission_granted(granted: tuple[str, ...] | list[str], needed: str) -> bool:
    """'*' grants every tenant permission (not a platform one), 'crm.*' every crm permission,
    else an exact match."""
    for g in granted:
        if g == needed or (g == "*" and not needed.startswith(PLATFORM_PREFIX)):
            return True
        if g.endswith(".*") and needed.startswith(g[:-1]):
            return True
    return False


@dataclass(frozen=True, slots=True)
class RequestContext:
    tenant_id: uuid.UUID | None
    principal: Principal | None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    token: str = ""
    # The client's address: x-forwarded-for from a trusted gateway, else the gRPC peer.
    peer: str = ""
    user_agent: str = ""


_current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar("givance_request", default=None)


def current() -> RequestContext:
    ctx = _current.get()
    if ctx is None:
        raise RuntimeError("no request context: called outside an RPC")
    return ctx


def current_or_none() -> RequestContext | None:
    return _current.get()


def bind(ctx: RequestContext) -> contextvars.Token:
    return _current.set(ctx)


def reset(token: contextvars.Token) -> None:
    _current.reset(token)
