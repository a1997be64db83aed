"""identity's SQL for organizations: read, update, and the caller's own organizations."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from chassis.errors import AlreadyExists

_COLUMNS = "o.id, o.name, o.slug, o.domain, o.mfa_required, o.version, o.created_at, o.updated_at"


async def get(conn: Any, org_id: uuid.UUID, *, for_update: bool = False) -> dict[str, Any] | None:
    sql = f"SELECT {_COLUMNS} FROM identity.organizations o WHERE o.id = :id AND o.deleted_at IS NULL"
    if for_update:
        sql += " FOR UPDATE"
    row = (await conn.execute(text(sql), {"id": org_id})).mappings().first()
    return dict(row) if row else None


async def update(conn: Any, org_id: uuid.UUID, *, name: str, slug: str, domain: str | None,
                 mfa_required: bool) -> dict[str, Any]:
    try:
        async with conn.begin_nested():
            row = (await conn.execute(
                text("UPDATE identity.organizations o SET name = :n, slug = :s, domain = :d, mfa_required = :m, "
                     "version = version + 1, updated_at = now() WHERE o.id = :id "
                     f"RETURNING {_COLUMNS}"),
                {"id": org_id, "n": name, "s": slug, "d": domain, "m": mfa_required},
            )).mappings().one()
    except IntegrityError as exc:
        if "organizations_domain" in str(exc):  # the unique index on lower(domain)
            raise AlreadyExists(f"the domain {domain!r} is used by another organization",
                                reason="DOMAIN_TAKEN") from None
        raise AlreadyExists(f"organization slug {slug!r} is taken", reason="SLUG_TAKEN") from None
    return dict(row)


async def list_for_user(conn: Any, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """The user's active memberships' organizations (needs the unit of work's user_id)."""
    rows = (await conn.execute(
        text(f"SELECT {_COLUMNS}, m.role, m.custom_role_id FROM identity.user_organizations m "
             "JOIN identity.organizations o ON o.id = m.organization_id "
             "WHERE m.user_id = :u AND m.status = 'active' AND o.deleted_at IS NULL ORDER BY lower(o.name), o.id"),
        {"u": user_id},
    )).mappings().all()
    return [dict(r) for r in rows]


async def default_organization(conn: Any, user_id: uuid.UUID) -> uuid.UUID | None:
    return (await conn.execute(
        text("SELECT default_organization_id FROM identity.users WHERE id = :u AND deleted_at IS NULL"),
        {"u": user_id},
    )).scalar()


async def live_ids(conn: Any) -> list[uuid.UUID]:
    """Every live organization (the table is not tenant-scoped: ids only, for platform tasks)."""
    return list((await conn.execute(
        text("SELECT id FROM identity.organizations WHERE deleted_at IS NULL ORDER BY id"))).scalars().all())
