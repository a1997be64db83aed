"""The platform's service principals, managed by the operator command (as givance_owner).

    create NAME PERMISSION...   a principal and its secret (shown once)
    grant NAME PERMISSION...    replaces its grant
    rotate NAME                 a new secret; the old one stops working
    revoke NAME                 no more tokens; the ones it holds stop working
    ensure NAME PERMISSION...   (development bootstrap) creates or updates it with a given secret

Every change is recorded in the platform trail with who ran the command. A revocation, a
rotation and a grant that takes a permission away also revoke every token the principal holds,
in every organization: one session revocation (its tokens' `sid`), recorded in
identity.revocations and broadcast as `identity.session.revoked`, as a logout is
(handlers/sessions.py), so every service refuses them within moments.
"""

from __future__ import annotations

import time
import uuid

from givance.events.v1 import identity_events_pb2

from chassis.db import Database, UnitOfWork
from chassis.errors import AlreadyExists, InvalidArgument, NotFound, Violations
from chassis.revocation import SESSION
from services.identity.domain import principals as rules
from services.identity.handlers.sessions import SESSION_REVOKED
from services.identity.store import platform as platform_store
from services.identity.store import principals as store
from services.identity.store import revocations as revocation_store
from services.identity.store.principals import ServicePrincipal

CREATE, GRANT, ROTATE, REVOKE = ("platform.service_principal.create", "platform.service_principal.grant",
                                 "platform.service_principal.rotate", "platform.service_principal.revoke")
NO_TENANT = uuid.UUID(int=0)  # a principal's revocation holds in every organization


def _checked(name: str, permissions: list[str] | None) -> tuple[str, list[str] | None]:
    v = Violations()
    name = rules.check_name(name, "name", v)
    perms = rules.clean_permissions(permissions, "permissions", v) if permissions is not None else None
    v.raise_if_any()
    return name, perms


async def create(admin: Database, name: str, permissions: list[str], by: str) -> tuple[ServicePrincipal, str]:
    """A new principal (or a revoked one reinstated) with a new secret, returned once."""
    name, perms = _checked(name, permissions)
    secret, secret_hash = rules.new_secret()
    async with admin.unit_of_work(None) as uow:
        await platform_store.as_owner(uow.conn)
        before = await store.find(uow.conn, name, for_update=True)
        if before is not None and before.revoked_at is None:
            raise AlreadyExists(f"the service principal {name} exists (rotate its secret, or grant it)")
        row = await store.upsert(uow.conn, name, secret_hash, perms, by)
        await _record(uow, by, CREATE, row, {"permissions": perms, "reinstated": before is not None})
    return row, secret


async def grant(admin: Database, name: str, permissions: list[str], by: str, horizon: float) -> ServicePrincipal:
    name, perms = _checked(name, permissions)
    async with admin.unit_of_work(None) as uow:
        await platform_store.as_owner(uow.conn)
        before = await _live(uow, name)
        row = await store.update(uow.conn, name, permissions=perms)
        taken = [p for p in before.permissions if p not in perms]
        if taken:  # its tokens holding them stop working; the next carry the new grant
            await _revoke_tokens(uow, row, horizon)
        await _record(uow, by, GRANT, row, {"before": list(before.permissions), "after": perms})
    return row


async def rotate(admin: Database, name: str, by: str, horizon: float) -> str:
    name, _ = _checked(name, None)
    secret, secret_hash = rules.new_secret()
    async with admin.unit_of_work(None) as uow:
        await platform_store.as_owner(uow.conn)
        await _live(uow, name)
        row = await store.update(uow.conn, name, secret_hash=secret_hash)
        await _revoke_tokens(uow, row, horizon)
        await _record(uow, by, ROTATE, row, {})
    return secret


async def revoke(admin: Database, name: str, by: str, horizon: float) -> bool:
    """False when there was no live principal of that name (nothing recorded)."""
    name, _ = _checked(name, None)
    async with admin.unit_of_work(None) as uow:
        await platform_store.as_owner(uow.conn)
        row = await store.revoke(uow.conn, name)
        if row is None:
            return False
        await _revoke_tokens(uow, row, horizon)
        await _record(uow, by, REVOKE, row, {"permissions": list(row.permissions)})
    return True


async def ensure(admin: Database, name: str, permissions: list[str], secret: str, by: str) -> ServicePrincipal:
    """Development bootstrap (`make run`): the principal exists, live, with this secret and grant."""
    name, perms = _checked(name, permissions)
    if not secret or len(secret) > rules.SECRET_MAX:
        raise InvalidArgument.field("secret", f"must be 1 to {rules.SECRET_MAX} characters")
    async with admin.unit_of_work(None) as uow:
        await platform_store.as_owner(uow.conn)
        before = await store.find(uow.conn, name, for_update=True)
        unchanged = (before is not None and before.revoked_at is None and list(before.permissions) == perms
                     and rules.secret_matches(secret, before.secret_hash))
        if unchanged:
            return before
        row = await store.upsert(uow.conn, name, rules.hash_secret(secret), perms, by)
        await _record(uow, by, CREATE, row, {"permissions": perms, "bootstrap": True})
    return row


async def list_principals(admin: Database) -> list[ServicePrincipal]:
    async with admin.unit_of_work(None) as uow:
        await platform_store.as_owner(uow.conn)
        return await store.list_all(uow.conn)


async def _live(uow: UnitOfWork, name: str) -> ServicePrincipal:
    row = await store.find(uow.conn, name, for_update=True)
    if row is None or row.revoked_at is not None:
        raise NotFound(f"no live service principal {name!r}")
    return row


async def _revoke_tokens(uow: UnitOfWork, row: ServicePrincipal, horizon: float) -> None:
    """Every token the principal holds, in every organization, stops working (its tokens' sid)."""
    sid = rules.session_id(row.id)
    not_before = round(time.time(), 6)
    event = identity_events_pb2.SessionRevokedEvent(session_id=sid, organization_id=str(NO_TENANT),
                                                    user_id=str(row.id), reason="principal_revoked")
    event.not_before.FromNanoseconds(int(not_before * 1_000_000) * 1000)
    event.expire_time.FromNanoseconds(int((not_before + horizon) * 1e9))
    uow.publish(SESSION_REVOKED, event, aggregate_type="service_principal", aggregate_id=str(row.id),
                tenant_id=NO_TENANT)
    await revocation_store.record(uow.conn, SESSION, NO_TENANT, sid, not_before, horizon)


async def _record(uow: UnitOfWork, by: str, action: str, row: ServicePrincipal, detail: dict) -> None:
    await platform_store.record(uow.conn, actor=by, action=action, resource_type="service_principal",
                                resource_id=str(row.id), organization_id=None, detail={"name": row.name, **detail})
