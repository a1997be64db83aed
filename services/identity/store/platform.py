"""identity's SQL for the platform: its operators and its own audit trail (global, no tenant).

identity's service role may read identity.platform_operators and read and append to
identity.platform_activity, nothing more (row-level security, migration 0009); the operators
command writes as givance_owner (`as_owner`).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text

from chassis.db import Connection

OWNER_ROLE = "givance_owner"


@dataclass(frozen=True, slots=True)
class Operator:
    user_id: uuid.UUID
    email: str
    permissions: tuple[str, ...]
    granted_by: str
    granted_at: datetime


@dataclass(frozen=True, slots=True)
class PlatformEntry:
    id: int
    occurred_at: datetime
    actor: str
    action: str
    resource_type: str
    resource_id: str
    organization_id: uuid.UUID | None
    detail: dict
    request_id: str
    ip_address: str


async def as_owner(conn: Connection) -> None:
    """For the rest of the transaction, act as the owner of identity's tables (the command)."""
    await conn.execute(text(f"SET LOCAL ROLE {OWNER_ROLE}"))


async def operator_permissions(conn: Connection, user_id: uuid.UUID) -> tuple[str, ...]:
    """The platform permissions of an active user flagged as an operator (nothing otherwise)."""
    row = (await conn.execute(
        text("SELECT o.permissions FROM identity.platform_operators o JOIN identity.users u ON u.id = o.user_id "
             "WHERE o.user_id = :u AND u.is_active AND u.deleted_at IS NULL"),
        {"u": user_id},
    )).mappings().first()
    return tuple(row["permissions"]) if row else ()


async def user_id_by_email(conn: Connection, email: str) -> uuid.UUID | None:
    return (await conn.execute(
        text("SELECT id FROM identity.users WHERE lower(email) = lower(:e) AND deleted_at IS NULL"), {"e": email},
    )).scalar()


async def upsert_operator(conn: Connection, user_id: uuid.UUID, permissions: list[str], granted_by: str) -> list[str]:
    """Grants (or replaces) the permissions; returns the ones held before (empty if none)."""
    before = (await conn.execute(
        text("SELECT permissions FROM identity.platform_operators WHERE user_id = :u FOR UPDATE"), {"u": user_id},
    )).scalar()
    await conn.execute(
        text("INSERT INTO identity.platform_operators (user_id, permissions, granted_by) VALUES (:u, :p, :by) "
             "ON CONFLICT (user_id) DO UPDATE SET permissions = EXCLUDED.permissions, "
             "granted_by = EXCLUDED.granted_by, updated_at = now()"),
        {"u": user_id, "p": permissions, "by": granted_by},
    )
    return list(before or [])


async def delete_operator(conn: Connection, user_id: uuid.UUID) -> list[str] | None:
    """The permissions the operator held, or None when the user was no operator."""
    row = (await conn.execute(
        text("DELETE FROM identity.platform_operators WHERE user_id = :u RETURNING permissions"), {"u": user_id},
    )).mappings().first()
    return list(row["permissions"]) if row else None


async def list_operators(conn: Connection) -> list[Operator]:
    rows = (await conn.execute(
        text("SELECT o.user_id, u.email, o.permissions, o.granted_by, o.updated_at FROM identity.platform_operators o "
             "JOIN identity.users u ON u.id = o.user_id ORDER BY lower(u.email)"),
    )).mappings().all()
    return [Operator(user_id=r["user_id"], email=r["email"], permissions=tuple(r["permissions"]),
                     granted_by=r["granted_by"], granted_at=r["updated_at"]) for r in rows]


async def record(conn: Connection, *, actor: str, action: str, resource_type: str, resource_id: str,
                 organization_id: uuid.UUID | None, detail: dict[str, Any], request_id: str = "",
                 ip_address: str = "") -> None:
    await conn.execute(
        text("INSERT INTO identity.platform_activity (actor, action, resource_type, resource_id, "
             "acting_organization_id, detail, request_id, ip_address) "
             "VALUES (:actor, :action, :rt, :rid, :org, CAST(:detail AS jsonb), :rq, :ip)"),
        {"actor": actor, "action": action, "rt": resource_type, "rid": resource_id, "org": organization_id,
         "detail": json.dumps(detail), "rq": request_id, "ip": ip_address},
    )


async def page(conn: Connection, *, action: str | None, action_prefix: str | None, before_id: int | None,
               limit: int) -> list[PlatformEntry]:
    """Newest first (by id: entries are appended in order)."""
    where, params = ["true"], {"limit": limit}
    if action is not None:
        where.append("action = :action")
        params["action"] = action
    if action_prefix is not None:
        where.append("starts_with(action, :prefix)")
        params["prefix"] = action_prefix
    if before_id is not None:
        where.append("id < :before")
        params["before"] = before_id
    rows = (await conn.execute(
        text("SELECT id, occurred_at, actor, action, resource_type, resource_id, acting_organization_id, detail, "
             "request_id, ip_address FROM identity.platform_activity "
             f"WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT :limit"),
        params,
    )).mappings().all()
    return [PlatformEntry(id=r["id"], occurred_at=r["occurred_at"], actor=r["actor"], action=r["action"],
                          resource_type=r["resource_type"], resource_id=r["resource_id"],
                          organization_id=r["acting_organization_id"],
                          detail=r["detail"] if isinstance(r["detail"], dict) else json.loads(r["detail"] or "{}"),
                          request_id=r["request_id"], ip_address=r["ip_address"]) for r in rows]
