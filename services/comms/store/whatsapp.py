"""comms.whatsapp_staff (the allowlist) and its routing table, comms.whatsapp_routes."""

from __future__ import annotations

import json
import uuid
from typing import Any

from chassis import sql
from chassis.db import Connection

COLUMNS = "id, organization_id, phone, user_id, created_at"


async def add(conn: Connection, org: uuid.UUID, phone: str, user_id: uuid.UUID | None) -> dict[str, Any] | None:
    """The staff row; None when the number belongs to another organization."""
    staff_id = uuid.uuid4()
    claimed = await conn.execute(
        "INSERT INTO comms.whatsapp_routes (phone, tenant_id, staff_id) VALUES (:p, :org, :id) "
        "ON CONFLICT (phone) DO NOTHING", {"p": phone, "org": org, "id": staff_id})
    if claimed.rowcount == 0:
        existing = await sql.first(conn, f"SELECT {COLUMNS} FROM comms.whatsapp_staff WHERE organization_id = :org "
                                         "AND phone = :p", {"org": org, "p": phone})
        return existing  # ours already, or None: another organization's
    await conn.execute("INSERT INTO comms.whatsapp_staff (id, organization_id, phone, user_id) "
                       "VALUES (:id, :org, :p, :u)", {"id": staff_id, "org": org, "p": phone, "u": user_id})
    return await sql.first(conn, f"SELECT {COLUMNS} FROM comms.whatsapp_staff WHERE id = :id", {"id": staff_id})


async def every(conn: Connection, org: uuid.UUID) -> list[dict[str, Any]]:
    return await sql.every(conn, f"SELECT {COLUMNS} FROM comms.whatsapp_staff WHERE organization_id = :org "
                                 "ORDER BY created_at, id", {"org": org})


async def remove(conn: Connection, org: uuid.UUID, staff_id: uuid.UUID) -> bool:
    row = await sql.first(conn, "DELETE FROM comms.whatsapp_staff WHERE organization_id = :org AND id = :id "
                                "RETURNING phone", {"org": org, "id": staff_id})
    if row is None:
        return False
    await conn.execute("DELETE FROM comms.whatsapp_routes WHERE phone = :p AND tenant_id = :org",
                       {"p": row["phone"], "org": org})
    return True


async def route(conn: Connection, phone: str) -> dict[str, Any] | None:
    """The organization and staff row a number belongs to (no tenant needed: the routing table)."""
    return await sql.first(conn, "SELECT tenant_id, staff_id FROM comms.whatsapp_routes WHERE phone = :p",
                           {"p": phone})


async def staff_user(conn: Connection, org: uuid.UUID, staff_id: uuid.UUID) -> uuid.UUID | None:
    return (await conn.execute("SELECT user_id FROM comms.whatsapp_staff WHERE organization_id = :org AND id = :id",
                               {"org": org, "id": staff_id})).scalar()


async def unrouted(conn: Connection, provider: str, event_id: str, payload: dict[str, Any]) -> bool:
    result = await conn.execute(
        "INSERT INTO comms.unrouted_webhooks (provider, provider_event_id, payload) "
        "VALUES (:p, :e, CAST(:payload AS jsonb)) ON CONFLICT DO NOTHING",
        {"p": provider, "e": event_id, "payload": json.dumps(payload)})
    return result.rowcount == 1
