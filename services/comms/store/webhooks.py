"""comms.webhook_events: raw provider payloads, one row per provider event id."""

from __future__ import annotations

import json
import uuid
from typing import Any

from chassis import sql
from chassis.db import Connection

COLUMNS = ("id, organization_id, provider, provider_event_id, event_type, payload, processed_at, error, attempts, "
           "created_at")


async def record(conn: Connection, org: uuid.UUID, provider: str, event_id: str, event_type: str,
                 payload: dict[str, Any]) -> uuid.UUID | None:
    """The new row's id, or None when this provider event was stored already (a redelivery)."""
    row_id = uuid.uuid4()
    result = await conn.execute(
        "INSERT INTO comms.webhook_events (id, organization_id, provider, provider_event_id, event_type, payload) "
        "VALUES (:id, :org, :p, :e, :t, CAST(:payload AS jsonb)) ON CONFLICT (provider, provider_event_id) DO NOTHING",
        {"id": row_id, "org": org, "p": provider, "e": event_id, "t": event_type, "payload": json.dumps(payload)})
    return row_id if result.rowcount == 1 else None


async def find(conn: Connection, org: uuid.UUID, provider: str, event_id: str) -> dict[str, Any] | None:
    return await sql.first(conn, f"SELECT {COLUMNS} FROM comms.webhook_events WHERE organization_id = :org "
                                 "AND provider = :p AND provider_event_id = :e",
                           {"org": org, "p": provider, "e": event_id})


async def get(conn: Connection, org: uuid.UUID, row_id: uuid.UUID, *,
              for_update: bool = False) -> dict[str, Any] | None:
    lock = " FOR UPDATE" if for_update else ""
    return await sql.first(conn, f"SELECT {COLUMNS} FROM comms.webhook_events WHERE organization_id = :org "
                                 f"AND id = :id{lock}", {"org": org, "id": row_id})


async def processed(conn: Connection, org: uuid.UUID, row_id: uuid.UUID) -> None:
    await conn.execute("UPDATE comms.webhook_events SET processed_at = now(), error = '', attempts = attempts + 1, "
                       "updated_at = now() WHERE organization_id = :org AND id = :id", {"org": org, "id": row_id})


async def failed(conn: Connection, org: uuid.UUID, row_id: uuid.UUID, error: str) -> None:
    await conn.execute("UPDATE comms.webhook_events SET error = :err, attempts = attempts + 1, updated_at = now() "
                       "WHERE organization_id = :org AND id = :id", {"org": org, "id": row_id, "err": error[:2000]})


# -- the operator's view (python -m services.comms.replay, as the migrations' role: every tenant) --


async def every(conn: Connection, *, pending_only: bool, limit: int) -> list[dict[str, Any]]:
    where = "WHERE processed_at IS NULL" if pending_only else ""
    return await sql.every(conn, f"SELECT {COLUMNS} FROM comms.webhook_events {where} "
                                 "ORDER BY created_at DESC LIMIT :limit", {"limit": limit})


async def tenant_of(conn: Connection, row_id: uuid.UUID) -> uuid.UUID | None:
    return (await conn.execute("SELECT organization_id FROM comms.webhook_events WHERE id = :id",
                               {"id": row_id})).scalar()
