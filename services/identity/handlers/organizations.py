"""Organization use cases: read and update the caller's organization, list the caller's
organizations, and switch to another of them (new tokens)."""

from __future__ import annotations

import uuid
from dataclasses import replace

from chassis.context import Principal
from chassis.db import Database
from chassis.errors import InvalidArgument, NotFound, PermissionDenied, Violations
from chassis.resource import check_etag, expand_mask, parse_id, parse_optional_id
from services.identity.domain import members as member_rules
from services.identity.domain import organizations as rules
from services.identity.domain.organizations import OrganizationFields
from services.identity.handlers import sessions
from services.identity.handlers.caller import require_user
from services.identity.handlers.deps import Deps
from services.identity.handlers.tokens import Tokens, issue_tokens
from services.identity.store import members as member_store
from services.identity.store import organizations as store
from services.identity.store.organizations import Organization

NOT_A_MEMBER = "you are not an active member of that organization"


def _user_id(principal: Principal) -> uuid.UUID:
    return require_user(principal, "only a user belongs to organizations")


async def get(db: Database, tenant: uuid.UUID, org_id: str) -> Organization:
    wanted = parse_optional_id(org_id, "id") or tenant
    async with db.unit_of_work(tenant) as uow:
        org = await store.get(uow.conn, wanted)
    if org is None:
        raise NotFound("organization not found")
    return org


async def update(db: Database, tenant: uuid.UUID, *, org_id: str, etag: str, patch: OrganizationFields,
                 mask: list[str]) -> Organization:
    v = Violations()
    wanted = parse_optional_id(org_id, "organization.id", v) or tenant
    fields = expand_mask(mask, rules.UPDATABLE, "update_mask", v)
    clean = patch
    if "name" in fields:
        clean = replace(clean, name=rules.check_name(patch.name, "organization.name", v))
    if "slug" in fields:
        clean = replace(clean, slug=rules.check_slug(patch.slug, "organization.slug", v))
    if "domain" in fields:
        clean = replace(clean, domain=rules.normalize_domain(patch.domain or "", "organization.domain", v))
    if "allowed_origins" in fields:
        clean = replace(clean, allowed_origins=rules.check_origins(list(patch.allowed_origins),
                                                                   "organization.allowed_origins", v))
    v.raise_if_any()
    if wanted != tenant:  # another organization: as if it did not exist
        raise NotFound("organization not found")
    async with db.unit_of_work(tenant) as uow:
        row = await store.get(uow.conn, tenant, for_update=True)
        if row is None:
            raise NotFound("organization not found")
        check_etag(etag, row.version, "organization", "organization.etag")
        before = {f: getattr(row, f) for f in fields}
        after = {f: getattr(clean, f) for f in fields}
        if before == after:
            return row
        merged = {**{f: getattr(row, f) for f in rules.UPDATABLE}, **after}
        if "allowed_origins" not in fields:
            merged["allowed_origins"] = None  # unchanged
        updated = await store.update(uow.conn, tenant, **merged)
        changed = [f for f in fields if before[f] != after[f]]
        uow.audit("identity.organization.update", "organization", str(tenant),
                  before={f: _plain(before[f]) for f in changed}, after={f: _plain(after[f]) for f in changed})
    return updated


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


async def origin_allowed(db: Database, origin: str, organization_id: str) -> bool:
    """CORS: whether a page of `origin` may call the API for the organization (any organization
    when none is named). An origin that is not one (as stored) or a malformed id is simply no."""
    v = Violations()
    clean = rules.normalize_origin(origin, "origin", v) if len(origin) <= rules.ORIGIN_MAX else None
    if clean is None or clean != origin.strip():
        return False
    org = None
    if organization_id:
        try:
            org = uuid.UUID(organization_id)
        except ValueError:
            return False
    async with db.unit_of_work(org) as uow:
        return await store.origin_allowed(uow.conn, clean, org)


async def list_mine(db: Database, principal: Principal) -> tuple[list[Organization], uuid.UUID | None]:
    user_id = _user_id(principal)
    async with db.unit_of_work(None, user_id=user_id) as uow:
        orgs = await store.list_for_user(uow.conn, user_id)
        default = await store.default_organization(uow.conn, user_id)
    return orgs, default


async def switch(deps: Deps, principal: Principal, organization_id: str, make_default: bool) -> Tokens:
    if not organization_id:
        raise InvalidArgument.field("organization_id", "is required")
    target = parse_id(organization_id, "organization_id")
    user_id = _user_id(principal)
    # One answer whether the organization exists or not: never confirm it. app.user_id lets the
    # caller's session (in the organization of the token) be read.
    async with deps.db.unit_of_work(target, user_id=user_id) as uow:
        # New tokens from an access token: only while its session lives and the password is unchanged.
        await sessions.require_live_session(uow, principal)
        user = await member_store.user_status(uow.conn, user_id)
        member = await member_store.get_member(uow.conn, target, user_id)
        if user is None or not user["is_active"] or member is None or member.status != member_rules.ACTIVE:
            raise PermissionDenied(NOT_A_MEMBER, reason="NOT_A_MEMBER")
        if make_default:
            await member_store.set_default_organization(uow.conn, user_id, target)
        # the new session keeps the caller's sign-in time (no new proof of who they are)
        return await issue_tokens(deps, uow, user_id, target, uuid.uuid4(), auth_time=principal.auth_time or None)
