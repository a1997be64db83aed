"""Organization use cases: read and update the caller's organization, list the caller's
organizations, and switch to another of them (new tokens)."""

from __future__ import annotations

import uuid
from dataclasses import replace

from chassis.context import Principal
from chassis.crypto import Keyring
from chassis.db import Database
from chassis.errors import InvalidArgument, NotFound, PermissionDenied, Violations
from chassis.resource import check_etag, expand_mask, parse_id, parse_optional_id
from services.identity.domain import members as member_rules
from services.identity.domain import organizations as rules
from services.identity.domain import profile as profile_rules
from services.identity.domain.organizations import OrganizationFields
from services.identity.handlers import sessions
from services.identity.handlers.caller import require_user
from services.identity.handlers.deps import Deps
from services.identity.handlers.tokens import Tokens, issue_tokens
from services.identity.store import members as member_store
from services.identity.store import organizations as store
from services.identity.store.organizations import Organization

NOT_A_MEMBER = "you are not an active member of that organization"
Address = profile_rules.Address  # the API builds a request's address with it


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
                 mask: list[str], profile: dict | None = None, keyring: Keyring | None = None) -> Organization:
    """UpdateOrganization: the masked fields (an empty mask: all of them); `profile`, the raw
    profile fields (domain/profile.py) as the request carried them; the tax id is sealed with
    `keyring`, bound to the organization, and shown only masked."""
    v = Violations()
    wanted = parse_optional_id(org_id, "organization.id", v) or tenant
    fields = expand_mask(mask, (*rules.UPDATABLE, *profile_rules.ORGANIZATION_FIELDS), "update_mask", v)
    core = [f for f in fields if f in rules.UPDATABLE]
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
    asked = [f for f in fields if f in profile_rules.ORGANIZATION_FIELDS]
    given = profile_rules.check_organization(profile or {}, asked, "organization", v) if asked else {}
    v.raise_if_any()
    if wanted != tenant:  # another organization: as if it did not exist
        raise NotFound("organization not found")
    async with db.unit_of_work(tenant) as uow:
        row = await store.get(uow.conn, tenant, for_update=True)
        if row is None:
            raise NotFound("organization not found")
        check_etag(etag, row.version, "organization", "organization.etag")
        before = {f: getattr(row, f) for f in core} | _stored(row, asked)
        after = {f: getattr(clean, f) for f in core} | _given(given)
        if before == after and "tax_id" not in asked:  # a tax id is never compared in clear: always written
            return row
        merged = {**{f: getattr(row, f) for f in rules.UPDATABLE}, **{f: after[f] for f in core}}
        if "allowed_origins" not in fields:
            merged["allowed_origins"] = None  # unchanged
        updated = await store.update(uow.conn, tenant, **merged, profile=_columns(given, tenant, keyring))
        changed = [f for f in fields if before[f] != after[f] or f == "tax_id"]
        uow.audit("identity.organization.update", "organization", str(tenant),
                  before={f: _plain(before[f]) for f in changed}, after={f: _plain(after[f]) for f in changed})
    return updated


def _stored(row: Organization, asked: list[str]) -> dict:
    """The profile fields as they are compared and audited: the tax id only masked."""
    shown = {"tax_id": profile_rules.mask(row.tax_id_last4),
             "address": profile_rules.Address.from_json(row.address).as_json()}
    return {f: shown[f] if f in shown else getattr(row, f) for f in asked}


def _given(given: dict) -> dict:
    shown = {}
    if "tax_id" in given:
        shown["tax_id"] = profile_rules.mask(given["tax_id"][-4:]) if given["tax_id"] else ""
    if "address" in given:
        shown["address"] = given["address"].as_json()
    return given | shown


def _columns(given: dict, org: uuid.UUID, keyring: Keyring | None) -> dict:
    """The profile's columns to write (the tax id sealed, bound to the organization)."""
    out = {}
    for f, value in given.items():
        if f == "tax_id":
            assert keyring is not None
            out["tax_id_sealed"] = keyring.seal(value.encode(), tax_id_aad(org)) if value else None
            out["tax_id_last4"] = value[-4:] if value else None
        elif f == "address":
            out[f] = value.as_json()
        else:
            out[f] = value
    return out


def masked_tax_id(row: Organization) -> str:
    return profile_rules.mask(row.tax_id_last4)


def tax_id_aad(org: uuid.UUID) -> bytes:
    """The associated data an organization's tax id is sealed with: it opens only as that organization's."""
    return f"identity.organization.tax_id:{org}".encode()


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
