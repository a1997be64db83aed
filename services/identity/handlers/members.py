"""Member use cases: list the caller's organization's members, change a member's role or
overrides, suspend, reactivate and remove them (the rights rules: handlers/rights.py)."""

from __future__ import annotations

import uuid
from datetime import datetime

from chassis.context import Principal
from chassis.db import Database
from chassis.errors import Violations
from chassis.resource import Keyset, check_etag, parse_id
from services.identity.domain import members as rules
from services.identity.handlers.deps import Deps
from services.identity.handlers.rights import (
    RightsChanges,
    actor_is_owner,
    lock_member,
    member_audit,
    role_permissions,
)
from services.identity.handlers.service_accounts import revoke_created_by
from services.identity.store import members as store
from services.identity.store import staff as staff_store
from services.identity.store.members import Member


async def list_members(db: Database, org: uuid.UUID, page_size: int, page_token: str) -> tuple[list[Member], str]:
    page = Keyset.of(page_size, page_token, ("members",), (datetime.fromisoformat, uuid.UUID))
    async with db.unit_of_work(org) as uow:
        rows = await store.page_members(uow.conn, org, tuple(page.after) if page.after else None, page.limit)
    return page.cut(rows, lambda r: (r.created_at, r.user_id))


async def update_member(deps: Deps, principal: Principal, org: uuid.UUID, *,
                        user_id: str, role: str, overrides: tuple[list[str], list[str]] | None, etag: str) -> Member:
    v = Violations()
    uid = parse_id(user_id, "member.user_id", v)
    new_ref = rules.parse_role(role, "member.role", v) if role.strip() else None
    new_overrides = rules.clean_overrides(overrides[0], overrides[1], "member.overrides", v) \
        if overrides is not None else None
    v.raise_if_any()
    changes = RightsChanges(deps.revocations)
    async with deps.db.unit_of_work(org) as uow:
        row = await lock_member(uow, org, uid)
        check_etag(etag, row.version, "member", "member.etag")
        current = row.membership()
        ref = new_ref or current.role
        ovr = new_overrides if new_overrides is not None else current.overrides
        if ref == current.role and ovr == current.overrides:
            return row
        rules.check_owner_change(actor_is_owner=await actor_is_owner(uow, org, principal), target=current,
                                 new_role=ref if ref != current.role else None,
                                 active_owners=await store.count_active_owners(uow.conn, org))
        if ref != current.role:
            rules.check_grantable(principal.permissions, list(await role_permissions(uow, org, ref)), "member.role")
        rules.check_grantable(principal.permissions, [g for g in ovr.grant if g not in current.overrides.grant],
                              "member.overrides.grant")
        await store.update_member_role(uow.conn, org, uid, ref.role, ref.custom_role_id, ovr.as_json())
        changes.add(uow, org, uid, rules.ROLE_CHANGED)
        await revoke_created_by(uow, changes, org, uid, rules.ROLE_CHANGED)
        await changes.record(uow)
        updated = await store.get_member(uow.conn, org, uid)
        uow.audit("identity.member.update", "member", str(uid), before=member_audit(row),
                  after=member_audit(updated))
    changes.apply()
    return updated


async def suspend_member(deps: Deps, principal: Principal, org: uuid.UUID,
                         user_id: str) -> Member:
    return await _set_status(deps, principal, org, user_id, rules.SUSPENDED)


async def reactivate_member(deps: Deps, principal: Principal, org: uuid.UUID,
                            user_id: str) -> Member:
    return await _set_status(deps, principal, org, user_id, rules.ACTIVE)


async def _set_status(deps: Deps, principal: Principal, org: uuid.UUID, user_id: str, status: str) -> Member:
    """Suspend a member (their sessions end) or reactivate them; a member already so is left as is."""
    suspending = status == rules.SUSPENDED
    uid = parse_id(user_id, "user_id")
    changes = RightsChanges(deps.revocations)
    async with deps.db.unit_of_work(org) as uow:
        row = await lock_member(uow, org, uid)
        if row.status == status:
            return row
        rules.check_owner_change(actor_is_owner=await actor_is_owner(uow, org, principal),
                                 target=row.membership(), new_role=None, suspending=suspending,
                                 active_owners=await store.count_active_owners(uow.conn, org))
        await store.set_member_status(uow.conn, org, uid, status)
        await staff_store.set_active(uow.conn, org, uid, not suspending)
        after: dict = {"status": status}
        if suspending:
            after["sessions_ended"] = await store.revoke_member_sessions(uow.conn, org, uid)
        changes.add(uow, org, uid, rules.SUSPENDED_CHANGE if suspending else rules.REACTIVATED)
        if suspending:  # the member's service accounts lose their rights with them
            await revoke_created_by(uow, changes, org, uid, rules.SUSPENDED_CHANGE)
        await changes.record(uow)
        updated = await store.get_member(uow.conn, org, uid)
        uow.audit(f"identity.member.{'suspend' if suspending else 'reactivate'}", "member", str(uid),
                  before={"status": row.status}, after=after)
    changes.apply()
    return updated


async def remove_member(deps: Deps, principal: Principal, org: uuid.UUID,
                        user_id: str) -> None:
    uid = parse_id(user_id, "user_id")
    changes = RightsChanges(deps.revocations)
    async with deps.db.unit_of_work(org) as uow:
        row = await lock_member(uow, org, uid)
        rules.check_owner_change(actor_is_owner=await actor_is_owner(uow, org, principal),
                                 target=row.membership(), new_role=None, removing=True,
                                 active_owners=await store.count_active_owners(uow.conn, org))
        await store.delete_member(uow.conn, org, uid)
        await staff_store.delete(uow.conn, org, uid)
        ended = await store.revoke_member_sessions(uow.conn, org, uid)
        await store.clear_default_organization(uow.conn, uid, org)
        changes.add(uow, org, uid, rules.REMOVED)
        await revoke_created_by(uow, changes, org, uid, rules.REMOVED)
        await changes.record(uow)
        uow.audit("identity.member.remove", "member", str(uid),
                  before={**member_audit(row), "email": row.email}, after={"sessions_ended": ended})
    changes.apply()
    # Their next login without an organization picks another of their memberships.
    async with deps.db.unit_of_work(None, user_id=uid) as uow:
        await store.adopt_default_organization(uow.conn, uid)
