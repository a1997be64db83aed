"""identity's SQL for service accounts (tenant data: row-level security on organization_id)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_COLUMNS = "id, organization_id, name, client_id, permissions, created_by, created_at"


async def insert(conn: AsyncConnection, org: uuid.UUID, account_id: uuid.UUID, name: str, client_id: str,
                 secret_hash: bytes, permissions: list[str], created_by: str) -> dict[str, Any]:
    row = (await conn.execute(
        text("INSERT INTO identity.service_accounts (id, organization_id, name, client_id, secret_hash, "
             "permissions, created_by) VALUES (:id, :org, :name, :cid, :h, :perms, :by) "
             f"RETURNING {_COLUMNS}"),
        {"id": account_id, "org": org, "name": name, "cid": client_id, "h": secret_hash,
         "perms": permissions, "by": _uuid_or_none(created_by)},
    )).mappings().one()
    return dict(row)


async def list_active(conn: AsyncConnection, org: uuid.UUID) -> list[dict[str, Any]]:
    rows = (await conn.execute(
        text(f"SELECT {_COLUMNS} FROM identity.service_accounts "
             "WHERE organization_id = :org AND deleted_at IS NULL ORDER BY created_at, id"),
        {"org": org},
    )).mappings().all()
    return [dict(r) for r in rows]


async def soft_delete(conn: AsyncConnection, org: uuid.UUID, account_id: uuid.UUID) -> dict[str, Any] | None:
    row = (await conn.execute(
        text("UPDATE identity.service_accounts SET deleted_at = now(), updated_at = now() "
             "WHERE organization_id = :org AND id = :id AND deleted_at IS NULL "
             f"RETURNING {_COLUMNS}"),
        {"org": org, "id": account_id},
    )).mappings().first()
    return dict(row) if row else None


async def by_client_id(conn: AsyncConnection, org: uuid.UUID, client_id: str) -> dict[str, Any] | None:
    """A live account of a live organization (the tenant must be org: RLS)."""
    row = (await conn.execute(
        text("SELECT sa.id, sa.organization_id, sa.secret_hash, sa.permissions FROM identity.service_accounts sa "
             "JOIN identity.organizations o ON o.id = sa.organization_id AND o.deleted_at IS NULL "
             "WHERE sa.organization_id = :org AND sa.client_id = :cid AND sa.deleted_at IS NULL"),
        {"org": org, "cid": client_id},
    )).mappings().first()
    return dict(row) if row else None


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (TypeError, ValueError):
        return None
