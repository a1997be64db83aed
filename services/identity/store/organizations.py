"""identity's SQL for organizations: read, update, and the caller's own organizations."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from chassis.db import Connection
from chassis.errors import AlreadyExists
from chassis.sql import by_name, first, update_row

COLUMNS = ("o.id, o.name, o.slug, o.domain, o.mfa_required, o.version, o.created_at, o.updated_at, o.state, "
           "o.state_reason, o.erase_at, o.description, o.logo_url, o.website, o.industry, o.company_size, "
           "o.contact_email, o.contact_phone, o.address, o.timezone, o.tax_id_last4, o.registration_number")
# The profile's columns an update may set (the tax id as tax_id_sealed and tax_id_last4).
PROFILE_COLUMNS = ("description", "logo_url", "website", "industry", "company_size", "contact_email", "contact_phone",
                   "address", "timezone", "tax_id_sealed", "tax_id_last4", "registration_number")
# The organization's CORS origins, in the order they were given.
ORIGINS = ("ARRAY(SELECT x.origin FROM identity.organization_origins x WHERE x.organization_id = o.id "
           "ORDER BY x.position) AS allowed_origins")


@dataclass(frozen=True, slots=True)
class Organization:
    id: uuid.UUID
    name: str
    slug: str
    domain: str | None
    mfa_required: bool
    version: int
    created_at: datetime
    updated_at: datetime
    state: str = "active"  # active, suspended, closing (domain/lifecycle.py)
    state_reason: str = ""
    erase_at: datetime | None = None
    # the profile (domain/profile.py); the tax id only as its last four characters
    description: str = ""
    logo_url: str = ""
    website: str = ""
    industry: str = ""
    company_size: str = ""
    contact_email: str = ""
    contact_phone: str = ""
    address: dict = field(default_factory=dict)
    timezone: str = "UTC"
    tax_id_last4: str | None = None
    registration_number: str = ""
    allowed_origins: tuple[str, ...] = ()


_organization = by_name(Organization)


async def get(conn: Connection, org_id: uuid.UUID, *, for_update: bool = False) -> Organization | None:
    sql = f"SELECT {COLUMNS}, {ORIGINS} FROM identity.organizations o WHERE o.id = :id AND o.deleted_at IS NULL"
    if for_update:
        sql += " FOR UPDATE OF o"
    return await first(conn, sql, {"id": org_id}, to_organization)


def to_organization(r) -> Organization:
    """An organization from its COLUMNS (and ORIGINS, when selected)."""
    d = dict(r)
    d["allowed_origins"] = tuple(d.get("allowed_origins") or ())
    if isinstance(d.get("address"), str):
        d["address"] = json.loads(d["address"])
    return Organization(**d)


async def set_state(conn: Connection, org_id: uuid.UUID, state: str, reason: str,
                    erase_at: datetime | None = None) -> Organization:
    """The organization's state (its version moves on); the unit of work's tenant is org_id."""
    row = (await conn.execute(
        text("UPDATE identity.organizations o SET state = :state, state_reason = :reason, state_changed_at = now(), "
             "erase_at = :erase, version = version + 1, updated_at = now() WHERE o.id = :id AND o.deleted_at IS NULL "
             f"RETURNING {COLUMNS}, {ORIGINS}"),
        {"id": org_id, "state": state, "reason": reason, "erase": erase_at})).mappings().first()
    assert row is not None
    return to_organization(row)


async def state(conn: Connection, org_id: uuid.UUID) -> str | None:
    """The state of a live organization (None: none such)."""
    return (await conn.execute(
        text("SELECT state FROM identity.organizations WHERE id = :id AND deleted_at IS NULL"), {"id": org_id},
    )).scalar()


async def update(conn: Connection, org_id: uuid.UUID, *, name: str, slug: str, domain: str | None,
                 mfa_required: bool, allowed_origins: tuple[str, ...] | None = None,
                 profile: dict | None = None) -> Organization:
    """The organization's fields (its version moves on); `allowed_origins`, when given, replaces
    the list of CORS origins; `profile` sets the PROFILE_COLUMNS it names."""
    values = {"name": name, "slug": slug, "domain": domain, "mfa_required": mfa_required}
    for column, value in (profile or {}).items():
        assert column in PROFILE_COLUMNS, column
        values[column] = json.dumps(value) if column == "address" else value
    try:
        async with conn.begin_nested():
            row = await update_row(conn, "identity.organizations AS o", None, org_id, values,
                                   casts={"address": "jsonb"}, returning=COLUMNS)
    except IntegrityError as exc:
        if "organizations_domain" in str(exc):  # the unique index on lower(domain)
            raise AlreadyExists(f"the domain {domain!r} is used by another organization",
                                reason="DOMAIN_TAKEN") from None
        raise AlreadyExists(f"organization slug {slug!r} is taken", reason="SLUG_TAKEN") from None
    if allowed_origins is not None:
        await conn.execute(text("DELETE FROM identity.organization_origins WHERE organization_id = :o"),
                           {"o": org_id})
        if allowed_origins:
            await conn.execute(
                text("INSERT INTO identity.organization_origins (organization_id, origin, position) "
                     "SELECT :o, origin, n FROM unnest(CAST(:origins AS text[])) WITH ORDINALITY AS t(origin, n)"),
                {"o": org_id, "origins": list(allowed_origins)})
    else:
        allowed_origins = await origins(conn, org_id)
    return to_organization({**dict(row), "allowed_origins": tuple(allowed_origins)})


async def origins(conn: Connection, org_id: uuid.UUID) -> tuple[str, ...]:
    return tuple((await conn.execute(
        text("SELECT origin FROM identity.organization_origins WHERE organization_id = :o ORDER BY position"),
        {"o": org_id})).scalars().all())


async def origin_allowed(conn: Connection, origin: str, org_id: uuid.UUID | None) -> bool:
    """Whether `org_id` (the unit of work's tenant) allows `origin`; with no org_id, whether any
    organization does (the origin_lookup policy shows the rows of app.cors_origin only)."""
    if org_id is not None:
        return bool((await conn.execute(
            text("SELECT EXISTS (SELECT 1 FROM identity.organization_origins "
                 "WHERE organization_id = :o AND origin = :origin)"), {"o": org_id, "origin": origin})).scalar())
    await conn.execute(text("SELECT set_config('app.cors_origin', :origin, true)"), {"origin": origin})
    return bool((await conn.execute(
        text("SELECT EXISTS (SELECT 1 FROM identity.organization_origins WHERE origin = :origin)"),
        {"origin": origin})).scalar())


async def list_for_user(conn: Connection, user_id: uuid.UUID) -> list[Organization]:
    """The user's active memberships' organizations (needs the unit of work's user_id)."""
    rows = (await conn.execute(
        text(f"SELECT {COLUMNS}, {ORIGINS} FROM identity.user_organizations m "
             "JOIN identity.organizations o ON o.id = m.organization_id "
             "WHERE m.user_id = :u AND m.status = 'active' AND o.deleted_at IS NULL ORDER BY lower(o.name), o.id"),
        {"u": user_id},
    )).mappings().all()
    return [to_organization(r) for r in rows]


async def default_organization(conn: Connection, user_id: uuid.UUID) -> uuid.UUID | None:
    return (await conn.execute(
        text("SELECT default_organization_id FROM identity.users WHERE id = :u AND deleted_at IS NULL"),
        {"u": user_id},
    )).scalar()


async def live_ids(conn: Connection) -> list[uuid.UUID]:
    """Every live organization (the table is not tenant-scoped: ids only, for platform tasks)."""
    return list((await conn.execute(
        text("SELECT id FROM identity.organizations WHERE deleted_at IS NULL ORDER BY id"))).scalars().all())


# -- a user's further organizations; closing and erasure ----------------------------------------


async def insert(conn: Connection, org_id: uuid.UUID, name: str, slug: str, created_by: uuid.UUID,
                 request_id: str | None) -> Organization:
    try:
        async with conn.begin_nested():
            row = (await conn.execute(
                text("INSERT INTO identity.organizations AS o (id, name, slug, created_by, create_request_id) "
                     f"VALUES (:id, :name, :slug, :by, :rid) RETURNING {COLUMNS}"),
                {"id": org_id, "name": name, "slug": slug, "by": created_by, "rid": request_id},
            )).mappings().one()
    except IntegrityError as exc:
        if "organizations_create_request" in str(exc):
            raise AlreadyExists("request_id was used for another organization", reason="REQUEST_ID_REUSED") from None
        raise AlreadyExists(f"organization slug {slug!r} is taken", reason="SLUG_TAKEN") from None
    return to_organization(row)


async def created_by_request(conn: Connection, user_id: uuid.UUID, request_id: str) -> Organization | None:
    """The organization the user created with this request id (seen while they are a member:
    the unit of work's user_id)."""
    return await first(conn, f"SELECT {COLUMNS}, {ORIGINS} FROM identity.organizations o WHERE o.created_by = :u "
                             "AND o.create_request_id = :r AND o.deleted_at IS NULL", {"u": user_id, "r": request_id},
                       to_organization)


async def owned_count(conn: Connection, user_id: uuid.UUID) -> int:
    """How many live organizations the user owns (the unit of work's user_id)."""
    return int((await conn.execute(
        text("SELECT count(*) FROM identity.user_organizations m JOIN identity.organizations o "
             "ON o.id = m.organization_id WHERE m.user_id = :u AND m.role = 'owner' AND m.status = 'active' "
             "AND o.deleted_at IS NULL"), {"u": user_id})).scalar())


async def schedule_erasure(conn: Connection, org_id: uuid.UUID, due_at: datetime) -> None:
    await conn.execute(
        text("INSERT INTO identity.organization_erasures (tenant_id, due_at) VALUES (:o, :due) "
             "ON CONFLICT (tenant_id) DO UPDATE SET due_at = EXCLUDED.due_at, locked_until = NULL, updated_at = now()"),
        {"o": org_id, "due": due_at})


async def cancel_erasure(conn: Connection, org_id: uuid.UUID) -> None:
    await conn.execute(text("DELETE FROM identity.organization_erasures WHERE tenant_id = :o"), {"o": org_id})


async def claim_erasures(conn: Connection, limit: int, lease_seconds: float) -> list[uuid.UUID]:
    """Due erasures no other replica holds, leased (a replica that dies mid-way leaves them)."""
    return list((await conn.execute(
        text("UPDATE identity.organization_erasures e SET locked_until = now() + make_interval(secs => :lease), "
             "updated_at = now() FROM (SELECT tenant_id FROM identity.organization_erasures WHERE due_at <= now() "
             "AND (locked_until IS NULL OR locked_until < now()) ORDER BY due_at LIMIT :limit "
             "FOR UPDATE SKIP LOCKED) due WHERE e.tenant_id = due.tenant_id RETURNING e.tenant_id"),
        {"lease": lease_seconds, "limit": limit})).scalars().all())


async def erase(conn: Connection, org_id: uuid.UUID) -> bool:
    """Removes a closing organization whose time has come (the unit of work's tenant): marked
    deleted (its memberships stay, as history), its sessions gone, no longer anyone's default.
    False when it is not due (reopened meanwhile)."""
    gone = (await conn.execute(
        text("UPDATE identity.organizations SET deleted_at = now(), updated_at = now(), version = version + 1 "
             "WHERE id = :o AND state = 'closing' AND erase_at <= now() AND deleted_at IS NULL RETURNING id"),
        {"o": org_id})).scalar()
    if gone is not None:
        await conn.execute(text("DELETE FROM identity.refresh_tokens WHERE organization_id = :o"), {"o": org_id})
        await conn.execute(text("UPDATE identity.users SET default_organization_id = NULL "
                                "WHERE default_organization_id = :o"), {"o": org_id})
    await cancel_erasure(conn, org_id)
    return gone is not None
