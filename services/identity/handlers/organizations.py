"""Organization use cases: read and update the caller's organization, list the caller's
organizations, and switch to another of them (new tokens)."""

from __future__ import annotations

import uuid
from dataclasses import replace

from chassis.context import Principal
from chassis.db import Database
from chassis.errors import Aborted, InvalidArgument, NotFound, PermissionDenied, Violations
from services.identity.domain import members as member_rules
from services.identity.domain import organizations as rules
from services.identity.handlers.accounts import Accounts, Tokens
from services.identity.store import members as member_store
from services.identity.store import organizations as store

NOT_A_MEMBER = "you are not an active member of that organization"


def _parse_id(value: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidArgument.field(field, "is not a valid id") from None


def _user_id(principal: Principal) -> uuid.UUID:
    if principal.kind != "user":
        raise PermissionDenied("only a user belongs to organizations", reason="USER_REQUIRED")
    return uuid.UUID(principal.subject)


async def get(db: Database, tenant: uuid.UUID, org_id: str) -> dict:
    wanted = _parse_id(org_id, "id") if org_id else tenant
    async with db.unit_of_work(tenant) as uow:
        org = await store.get(uow.conn, wanted)
    if org is None:
        raise NotFound("organization not found")
    return org


async def update(db: Database, tenant: uuid.UUID, *, org_id: str, etag: str, patch: rules.OrganizationFields,
                 mask: list[str]) -> dict:
    v = Violations()
    wanted = tenant
    if org_id:
        try:
            wanted = uuid.UUID(org_id)
        except ValueError:
            v.add("organization.id", "is not a valid id")
    fields = rules.expand_mask(mask, "update_mask", v)
    clean = patch
    if "name" in fields:
        clean = replace(clean, name=rules.check_name(patch.name, "organization.name", v))
    if "slug" in fields:
        clean = replace(clean, slug=rules.check_slug(patch.slug, "organization.slug", v))
    if "domain" in fields:
        clean = replace(clean, domain=rules.normalize_domain(patch.domain or "", "organization.domain", v))
    v.raise_if_any()
    if wanted != tenant:  # another organization: as if it did not exist
        raise NotFound("organization not found")
    async with db.unit_of_work(tenant) as uow:
        row = await store.get(uow.conn, tenant, for_update=True)
        if row is None:
            raise NotFound("organization not found")
        if etag and etag != member_rules.etag(row["version"]):
            raise Aborted("the organization changed since it was read (organization.etag is stale); read it again",
                          reason="ETAG_MISMATCH")
        before = {f: row[f] for f in fields}
        after = {f: getattr(clean, f) for f in fields}
        if before == after:
            return row
        merged = {**{f: row[f] for f in rules.UPDATABLE}, **after}
        updated = await store.update(uow.conn, tenant, **merged)
        changed = [f for f in fields if before[f] != after[f]]
        uow.audit("identity.organization.update", "organization", str(tenant),
                  before={f: before[f] for f in changed}, after={f: after[f] for f in changed})
    return updated


async def list_mine(db: Database, principal: Principal) -> tuple[list[dict], uuid.UUID | None]:
    user_id = _user_id(principal)
    async with db.unit_of_work(None, user_id=user_id) as uow:
        orgs = await store.list_for_user(uow.conn, user_id)
        default = await store.default_organization(uow.conn, user_id)
    return orgs, default


async def switch(accounts: Accounts, principal: Principal, organization_id: str, make_default: bool) -> Tokens:
    if not organization_id:
        raise InvalidArgument.field("organization_id", "is required")
    target = _parse_id(organization_id, "organization_id")
    user_id = _user_id(principal)
    # One answer whether the organization exists or not: never confirm it.
    async with accounts.db.unit_of_work(target) as uow:
        user = await member_store.user_status(uow.conn, user_id)
        member = await member_store.get_member(uow.conn, target, user_id)
        if user is None or not user["is_active"] or member is None or member["status"] != member_rules.ACTIVE:
            raise PermissionDenied(NOT_A_MEMBER, reason="NOT_A_MEMBER")
        if make_default:
            await member_store.set_default_organization(uow.conn, user_id, target)
        return await accounts._issue(uow, user_id, target, member["role"], uuid.uuid4())
