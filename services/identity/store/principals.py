"""identity's SQL for platform service principals (global, no tenant).

identity's service role may only read identity.service_principals (migration 0014); the
operator command writes as givance_owner (store.platform.as_owner).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text

from chassis.db import Connection
from chassis.sql import by_name, first

_COLUMNS = "id, name, secret_hash, permissions, created_by, created_at, updated_at, revoked_at"


@dataclass(frozen=True, slots=True)
class ServicePrincipal:
    id: uuid.UUID
    name: str
    secret_hash: bytes
    permissions: list[str]
    created_by: str
    created_at: datetime
    updated_at: datetime
    revoked_at: datetime | None


_principal = by_name(ServicePrincipal)


async def find(conn: Connection, name: str, *, for_update: bool = False) -> ServicePrincipal | None:
    lock = " FOR UPDATE" if for_update else ""
    return await first(conn, f"SELECT {_COLUMNS} FROM identity.service_principals WHERE name = :n{lock}",
                       {"n": name}, _principal)


async def upsert(conn: Connection, name: str, secret_hash: bytes, permissions: list[str], by: str) -> ServicePrincipal:
    """Creates the principal, or (existing, even revoked) replaces its secret and grant and reinstates it."""
    return await first(
        conn, "INSERT INTO identity.service_principals (id, name, secret_hash, permissions, created_by) "
        "VALUES (:id, :n, :h, :p, :by) ON CONFLICT (name) DO UPDATE SET secret_hash = EXCLUDED.secret_hash, "
        "permissions = EXCLUDED.permissions, revoked_at = NULL, updated_at = now() "
        f"RETURNING {_COLUMNS}",
        {"id": uuid.uuid4(), "n": name, "h": secret_hash, "p": permissions, "by": by}, _principal)


async def update(conn: Connection, name: str, *, secret_hash: bytes | None = None,
                 permissions: list[str] | None = None) -> ServicePrincipal:
    """Sets what is given on an existing principal."""
    return await first(
        conn, "UPDATE identity.service_principals SET secret_hash = COALESCE(:h, secret_hash), "
        "permissions = COALESCE(:p, permissions), updated_at = now() "
        f"WHERE name = :n RETURNING {_COLUMNS}",
        {"n": name, "h": secret_hash, "p": permissions}, _principal)


async def revoke(conn: Connection, name: str) -> ServicePrincipal | None:
    return await first(
        conn, "UPDATE identity.service_principals SET revoked_at = now(), updated_at = now() "
        f"WHERE name = :n AND revoked_at IS NULL RETURNING {_COLUMNS}", {"n": name}, _principal)


async def list_all(conn: Connection) -> list[ServicePrincipal]:
    rows = (await conn.execute(text(f"SELECT {_COLUMNS} FROM identity.service_principals ORDER BY name"))).mappings()
    return [ServicePrincipal(**dict(r)) for r in rows.all()]


async def organization_live(conn: Connection, org: uuid.UUID) -> bool:
    """The organization exists and is not removed (the tenant must be org: RLS)."""
    return bool((await conn.execute(
        text("SELECT 1 FROM identity.organizations WHERE id = :o AND deleted_at IS NULL"), {"o": org},
    )).scalar())
