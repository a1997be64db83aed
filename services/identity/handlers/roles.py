"""Role use cases: the system roles (read-only) and the organization's custom roles. A change
of a custom role's permissions reaches every member holding it at once (handlers/rights.py)."""

from __future__ import annotations

import uuid

from chassis.context import Principal
from chassis.db import Database
from chassis.errors import Aborted, FailedPrecondition, NotFound, Violations
from chassis.resource import check_etag, check_request_id, parse_id
from services.identity.domain import members as rules
from services.identity.domain import roles
from services.identity.handlers.deps import Deps
from services.identity.handlers.rights import RightsChanges
from services.identity.store import invitations as invitation_store
from services.identity.store import members as store
from services.identity.store import roles as role_store
from services.identity.store.roles import Role


def _refuse_system_role(value: str) -> None:
    if value.strip().lower() in roles.SYSTEM_ROLES:
        raise FailedPrecondition(f"{value.strip().lower()} is a system role; system roles are read-only",
                                 reason="SYSTEM_ROLE")


async def list_roles(db: Database, org: uuid.UUID) -> list[Role]:
    async with db.unit_of_work(org) as uow:
        custom = await role_store.list_roles(uow.conn, org)
    system = [Role(id=name, organization_id=None, name=name, description=roles.SYSTEM_ROLE_DESCRIPTIONS.get(name, ""),
                   permissions=list(perms), version=None, created_at=None, updated_at=None, system=True)
              for name, perms in roles.SYSTEM_ROLES.items()]
    return system + custom


async def create_role(db: Database, principal: Principal, org: uuid.UUID, *, name: str, description: str,
                      permissions: list[str], request_id: str) -> Role:
    v = Violations()
    name = roles.check_role_name(name, "role.name", v)
    description = roles.check_role_description(description, "role.description", v)
    perms = roles.clean_permissions(permissions, "role.permissions", v)
    if not permissions:
        v.add("role.permissions", "at least one permission is required")
    check_request_id(request_id, v)
    v.raise_if_any()
    rules.check_grantable(principal.permissions, perms, "role.permissions")
    async with db.unit_of_work(org) as uow:
        row = await role_store.insert_role(uow.conn, org, uuid.uuid4(), name, description, perms, request_id or None)
        if row is None:
            row = await role_store.role_by_request(uow.conn, org, request_id)
            if row is None:
                raise Aborted("a request with this request_id is in flight; retry", reason="REQUEST_IN_FLIGHT")
            return row
        uow.audit("identity.role.create", "role", str(row.id),
                  after={"name": name, "description": description, "permissions": perms})
    return row


async def update_role(deps: Deps, principal: Principal, org: uuid.UUID, *, role_id: str, name: str, description: str,
                      permissions: list[str], etag: str) -> Role:
    _refuse_system_role(role_id)
    v = Violations()
    rid = parse_id(role_id, "role.id", v)
    name = roles.check_role_name(name, "role.name", v)
    description = roles.check_role_description(description, "role.description", v)
    perms = roles.clean_permissions(permissions, "role.permissions", v)
    if not permissions:
        v.add("role.permissions", "at least one permission is required")
    v.raise_if_any()
    rules.check_grantable(principal.permissions, perms, "role.permissions")
    changes = RightsChanges(deps.revocations)
    async with deps.db.unit_of_work(org) as uow:
        await store.lock_organization(uow.conn, org)
        row = await role_store.get_role(uow.conn, org, rid, for_update=True)
        if row is None:
            raise NotFound(f"role {role_id} not found")
        check_etag(etag, row.version, "role", "role.etag")
        updated = await role_store.update_role(uow.conn, org, rid, name, description, perms)
        if list(row.permissions) != perms:
            # Every holder's tokens carry the old permissions: they stop working at once.
            for uid in await store.lock_members_with_role(uow.conn, org, rid):
                changes.add(uow, org, uid, rules.ROLE_CHANGED)
            await changes.record(uow)
        uow.audit("identity.role.update", "role", str(rid),
                  before={"name": row.name, "description": row.description,
                          "permissions": list(row.permissions)},
                  after={"name": name, "description": description, "permissions": perms,
                         "members_affected": len(changes)})
    changes.apply()
    return updated


async def delete_role(db: Database, org: uuid.UUID, role_id: str) -> None:
    _refuse_system_role(role_id)
    rid = parse_id(role_id, "id")
    async with db.unit_of_work(org) as uow:
        await store.lock_organization(uow.conn, org)
        row = await role_store.get_role(uow.conn, org, rid, for_update=True)
        if row is None:
            raise NotFound(f"role {role_id} not found")
        held = await store.count_members_with_role(uow.conn, org, rid)
        invited = await invitation_store.count_pending_invitations_with_role(uow.conn, org, rid)
        if held or invited:
            raise FailedPrecondition(
                f"the role is held by {held} member(s) and offered by {invited} pending invitation(s); "
                "give them another role first", reason="ROLE_IN_USE",
                metadata={"members": str(held), "invitations": str(invited)})
        await role_store.delete_role(uow.conn, org, rid)
        uow.audit("identity.role.delete", "role", str(rid),
                  before={"name": row.name, "permissions": list(row.permissions)})
