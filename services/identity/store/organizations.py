"""identity's SQL for organizations: read, update, and the caller's own organizations."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from chassis.db import Connection
from chassis.errors import AlreadyExists
from chassis.sql import by_name, first, update_row

COLUMNS = "o.id, o.name, o.slug, o.domain, o.mfa_required, o.version, o.created_at, o.updated_at"
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
    allowed_origins: tuple[str, ...] = ()


_organization = by_name(Organization)


async def get(conn: Connection, org_id: uuid.UUID, *, for_update: bool = False) -> Organization | None:
    sql = f"SELECT {COLUMNS}, {ORIGINS} FROM identity.organizations o WHERE o.id = :id AND o.deleted_at IS NULL"
    if for_update:
        sql += " FOR UPDATE OF o"
    return await first(conn, sql, {"id": org_id}, _row)


def _row(r) -> Organization:
    d = dict(r)
    d["allowed_origins"] = tuple(d.get("allowed_origins") or ())
    return Organization(**d)


async def update(conn: Connection, org_id: uuid.UUID, *, name: str, slug: str, domain: str | None,
                 mfa_required: bool, allowed_origins: tuple[str, ...] | None = None) -> Organization:
    """The organization's fields (its version moves on); `allowed_origins`, when given, replaces
    the list of CORS origins."""
    try:
        async with conn.begin_nested():
            row = await update_row(conn, "identity.organizations AS o", None, org_id, {
                "name": name, "slug": slug, "domain": domain, "mfa_required": mfa_required}, returning=COLUMNS)
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
    return Organization(**dict(row), allowed_origins=tuple(allowed_origins))


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
    return [_row(r) for r in rows]


async def default_organization(conn: Connection, user_id: uuid.UUID) -> uuid.UUID | None:
    return (await conn.execute(
        text("SELECT default_organization_id FROM identity.users WHERE id = :u AND deleted_at IS NULL"),
        {"u": user_id},
    )).scalar()


async def live_ids(conn: Connection) -> list[uuid.UUID]:
    """Every live organization (the table is not tenant-scoped: ids only, for platform tasks)."""
    return list((await conn.execute(
        text("SELECT id FROM identity.organizations WHERE deleted_at IS NULL ORDER BY id"))).scalars().all())
