"""The platform: its operators, what only they may do, and the platform's own audit trail.

A platform operator is a user an operator of the platform flagged by command
(`python -m services.identity.operators grant EMAIL`), never through a tenant API, so no
sign-up can become one. Their access tokens carry the platform permissions
(`platform.*` or some of them) on top of their role's in whichever organization they signed
in to; tenant roles, overrides and service accounts can never name them, and "*" does not
cover them (chassis.context.permission_granted).

A platform operation checks the grant twice: the token must carry the permission (the
interceptor), and the grant must still be in the database when the operation runs (here):
revoking a grant stops the operator's next platform call at once, not when their token
expires. Every grant, revocation and platform operation is recorded in
identity.platform_activity, which operators read (AuditService.ListPlatformActivity, or the
command's `activity`).

As Keycloak keeps the master realm's administrators apart from every realm's, and Zitadel its
IAM owners apart from organization owners.
"""

from __future__ import annotations

import uuid
from typing import Any

from chassis import context
from chassis.context import Principal, permission_granted
from chassis.db import Database, UnitOfWork
from chassis.errors import InvalidArgument, NotFound, PermissionDenied
from chassis.resource import Keyset
from services.identity.domain import roles
from services.identity.handlers.caller import user_id_or_none
from services.identity.store import platform as store
from services.identity.store.platform import Operator, PlatformEntry

ALL = "platform.*"
GRANT = "platform.operator.grant"
REVOKE = "platform.operator.revoke"
READ = "platform.audit.read"
FILTER_MAX = 200


def clean_permissions(values: list[str]) -> list[str]:
    """Platform permissions to grant: each catalogued (or platform.*); none means platform.*."""
    out: list[str] = []
    for p in values or [ALL]:
        if p != ALL and p not in roles.PLATFORM_PERMISSIONS:
            raise InvalidArgument.field("permission", f"{p!r} is not a platform permission "
                                        f"({', '.join((ALL, *roles.PLATFORM_PERMISSIONS))})")
        if p not in out:
            out.append(p)
    return out


async def token_permissions(uow: UnitOfWork, user_id: uuid.UUID) -> tuple[str, ...]:
    """What a user's access token carries besides their role's: their platform permissions."""
    return await store.operator_permissions(uow.conn, user_id)


async def require(uow: UnitOfWork, principal: Principal, permission: str) -> uuid.UUID:
    """The operator's user id, when their grant (read now, not from the token) covers `permission`."""
    user_id = user_id_or_none(principal)
    granted = await store.operator_permissions(uow.conn, user_id) if user_id else ()
    if user_id is None or not permission_granted(granted, permission):
        raise PermissionDenied(f"{permission} is for platform operators only", reason="PLATFORM_OPERATOR_REQUIRED",
                               metadata={"permission": permission})
    return user_id


async def record(uow: UnitOfWork, principal: Principal, action: str, resource_type: str, resource_id: str,
                 detail: dict[str, Any]) -> None:
    """An entry of the platform trail for an operator's call, in the operation's transaction."""
    ctx = context.current_or_none()
    await store.record(uow.conn, actor=principal.subject, action=action, resource_type=resource_type,
                       resource_id=resource_id, organization_id=principal.tenant_id, detail=detail,
                       request_id=ctx.request_id if ctx else "", ip_address=ctx.peer if ctx else "")


async def list_activity(db: Database, principal: Principal, page_size: int, page_token: str,
                        action: str) -> tuple[list[PlatformEntry], str]:
    """The platform trail, newest first; action matches exactly or by a prefix ending in "."."""
    if len(action) > FILTER_MAX:
        raise InvalidArgument.field("action", f"must be at most {FILTER_MAX} characters")
    page = Keyset.of(page_size, page_token, ("platform-activity", action), (int,))
    prefix = action if action.endswith(".") else None
    async with db.unit_of_work(principal.tenant_id) as uow:
        await require(uow, principal, READ)
        rows = await store.page(uow.conn, action=(action or None) if prefix is None else None, action_prefix=prefix,
                                before_id=page.after[0] if page.after else None, limit=page.limit)
    return page.cut(rows, lambda r: (r.id,))


# -- the operators command (python -m services.identity.operators), as givance_owner ----------


async def grant(admin: Database, email: str, permissions: list[str], by: str) -> list[str]:
    perms = clean_permissions(permissions)
    async with admin.unit_of_work(None) as uow:
        await store.as_owner(uow.conn)
        user_id = await _user(uow, email)
        before = await store.upsert_operator(uow.conn, user_id, perms, by)
        await store.record(uow.conn, actor=by, action=GRANT, resource_type="user", resource_id=str(user_id),
                           organization_id=None, detail={"email": email, "before": before, "after": perms})
    return perms


async def revoke(admin: Database, email: str, by: str) -> bool:
    """False when the user was no operator (nothing recorded)."""
    async with admin.unit_of_work(None) as uow:
        await store.as_owner(uow.conn)
        user_id = await _user(uow, email)
        before = await store.delete_operator(uow.conn, user_id)
        if before is None:
            return False
        await store.record(uow.conn, actor=by, action=REVOKE, resource_type="user", resource_id=str(user_id),
                           organization_id=None, detail={"email": email, "before": before})
    return True


async def list_operators(admin: Database) -> list[Operator]:
    async with admin.unit_of_work(None) as uow:
        await store.as_owner(uow.conn)
        return await store.list_operators(uow.conn)


async def recent(admin: Database, limit: int) -> list[PlatformEntry]:
    async with admin.unit_of_work(None) as uow:
        await store.as_owner(uow.conn)
        return await store.page(uow.conn, action=None, action_prefix=None, before_id=None, limit=limit)


async def _user(uow: UnitOfWork, email: str) -> uuid.UUID:
    user_id = await store.user_id_by_email(uow.conn, email.strip())
    if user_id is None:
        raise NotFound(f"no account has the email {email!r}")
    return user_id
