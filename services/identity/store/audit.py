"""identity's SQL for the audit trail: identity.activity_logs, partitioned by month, under
row-level security on organization_id (every partition too)."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_COLUMNS = ("id, occurred_at, actor_id, actor_kind, action, resource_type, resource_id, before, after, "
            "ip_address, request_id, service")


async def insert(conn: AsyncConnection, org: uuid.UUID, values: dict[str, Any]) -> None:
    await conn.execute(
        text("INSERT INTO identity.activity_logs (organization_id, occurred_at, actor_id, actor_kind, action, "
             "resource_type, resource_id, before, after, ip_address, request_id, service, event_id) "
             "VALUES (:org, :occurred_at, :actor_id, :actor_kind, :action, :resource_type, :resource_id, "
             "CAST(:before AS jsonb), CAST(:after AS jsonb), :ip_address, :request_id, :service, :event_id) "
             "ON CONFLICT (occurred_at, event_id) WHERE event_id IS NOT NULL DO NOTHING"),
        {**values, "org": org,
         "before": None if values.get("before") is None else json.dumps(values["before"]),
         "after": None if values.get("after") is None else json.dumps(values["after"])},
    )


async def page(conn: AsyncConnection, org: uuid.UUID, *, actor_id: str | None, action: str | None,
               action_prefix: str | None, resource_type: str | None, resource_id: str | None,
               start: datetime | None, end: datetime | None, after: tuple[datetime, uuid.UUID] | None,
               limit: int) -> list[dict[str, Any]]:
    """Newest first, keyset on (occurred_at, id)."""
    where = ["organization_id = :org"]
    params: dict[str, Any] = {"org": org, "limit": limit}
    for column, value in (("actor_id", actor_id), ("action", action), ("resource_type", resource_type),
                          ("resource_id", resource_id)):
        if value is not None:
            where.append(f"{column} = :{column}")
            params[column] = value
    if action_prefix is not None:
        where.append("starts_with(action, :action_prefix)")
        params["action_prefix"] = action_prefix
    if start is not None:
        where.append("occurred_at >= :start")
        params["start"] = start
    if end is not None:
        where.append("occurred_at < :end")
        params["end"] = end
    if after is not None:
        where.append("(occurred_at, id) < (:after_time, :after_id)")
        params["after_time"], params["after_id"] = after
    rows = (await conn.execute(
        text(f"SELECT {_COLUMNS} FROM identity.activity_logs WHERE {' AND '.join(where)} "
             "ORDER BY occurred_at DESC, id DESC LIMIT :limit"),
        params,
    )).mappings().all()
    return [_row(r) for r in rows]


def _row(m: Any) -> dict[str, Any]:
    row = dict(m)
    for key in ("before", "after"):
        if isinstance(row.get(key), str):
            row[key] = json.loads(row[key])
    return row


async def ensure_partitions(conn: AsyncConnection, first: date, months: int) -> None:
    """Creates the monthly partitions (with row-level security) that do not exist yet."""
    await conn.execute(text("SELECT identity.ensure_activity_partitions(:first, :months)"),
                       {"first": first, "months": months})
