"""identity's SQL for service accounts (tenant data: row-level security on organization_id)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text

from chassis.db import Connection
from chassis.sql import by_name, first

_COLUMNS = "id, organization_id, name, client_id, permissions, created_by, created_at"


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    client_id: str
    permissions: list[str]
    created_by: uuid.UUID | None
    created_at: datetime


_service_account = by_name(ServiceAccount)


async def insert(conn: Connection, org: uuid.UUID, account_id: uuid.UUID, name: str, client_id: str,
                 secret_hash: bytes, permissions: list[str], created_by: str) -> ServiceAccount:
    row = (await conn.execute(
        text("INSERT INTO identity.service_accounts (id, organization_id, name, client_id, secret_hash, "
             "permissions, created_by) VALUES (:id, :org, :name, :cid, :h, :perms, :by) "
             f"RETURNING {_COLUMNS}"),
        {"id": account_id, "org": org, "name": name, "cid": client_id, "h": secret_hash,
         "perms": permissions, "by": _uuid_or_none(created_by)},
    )).mappings().one()
    return ServiceAccount(**dict(row))


async def list_active(conn: Connection, org: uuid.UUID) -> list[ServiceAccount]:
    rows = (await conn.execute(
        text(f"SELECT {_COLUMNS} FROM identity.service_accounts "
             "WHERE organization_id = :org AND deleted_at IS NULL ORDER BY created_at, id"),
        {"org": org},
    )).mappings().all()
    return [ServiceAccount(**dict(r)) for r in rows]


async def soft_delete(conn: Connection, org: uuid.UUID, account_id: uuid.UUID) -> ServiceAccount | None:
    return await first(
        conn, "UPDATE identity.service_accounts SET deleted_at = now(), updated_at = now() "
        "WHERE organization_id = :org AND id = :id AND deleted_at IS NULL "
        f"RETURNING {_COLUMNS}",
        {"org": org, "id": account_id}, _service_account)


async def by_client_id(conn: Connection, org: uuid.UUID, client_id: str) -> dict[str, Any] | None:
    """A live account of a live organization (the tenant must be org: RLS)."""
    return await first(
        conn, "SELECT sa.id, sa.organization_id, sa.secret_hash, sa.permissions, sa.created_by "
        "FROM identity.service_accounts sa "
        "JOIN identity.organizations o ON o.id = sa.organization_id AND o.deleted_at IS NULL "
        "WHERE sa.organization_id = :org AND sa.client_id = :cid AND sa.deleted_at IS NULL",
        {"org": org, "cid": client_id})


async def live_permissions(conn: Connection, org: uuid.UUID,
                           account_id: uuid.UUID) -> tuple[list[str], uuid.UUID | None] | None:
    """(permissions, creator) of a live service account (a creator of service accounts), else None."""
    row = (await conn.execute(
        text("SELECT permissions, created_by FROM identity.service_accounts "
             "WHERE organization_id = :org AND id = :id AND deleted_at IS NULL"),
        {"org": org, "id": account_id},
    )).mappings().first()
    return (list(row["permissions"]), row["created_by"]) if row else None


async def ids_created_by(conn: Connection, org: uuid.UUID, creator: uuid.UUID) -> list[uuid.UUID]:
    """The live service accounts a member (or service account) created."""
    return list((await conn.execute(
        text("SELECT id FROM identity.service_accounts WHERE organization_id = :org AND created_by = :c "
             "AND deleted_at IS NULL"),
        {"org": org, "c": creator},
    )).scalars().all())


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (TypeError, ValueError):
        return None
