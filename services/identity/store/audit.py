"""identity's SQL for the audit trail: identity.activity_logs, partitioned by month, under
row-level security on organization_id (every partition too)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import text

from chassis.db import Connection
from chassis.sql import Where, every

_COLUMNS = ("id, occurred_at, actor_id, actor_kind, action, resource_type, resource_id, before, after, "
            "ip_address, request_id, service")


@dataclass(frozen=True, slots=True)
class Action:
    """What an audited action was: who did it, what, to which resource, and the resource before and after."""

    actor_id: str
    actor_kind: str
    action: str
    resource_type: str
    resource_id: str
    before: dict | None
    after: dict | None


@dataclass(frozen=True, slots=True)
class ActivityEntry(Action):
    """One entry of the audit trail."""

    id: uuid.UUID
    occurred_at: datetime
    ip_address: str | None
    request_id: str | None
    service: str


async def insert(conn: Connection, org: uuid.UUID, values: dict[str, Any]) -> None:
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


async def page(conn: Connection, org: uuid.UUID, *, actor_id: str | None, action: str | None,
               action_prefix: str | None, resource_type: str | None, resource_id: str | None,
               start: datetime | None, end: datetime | None, after: tuple[datetime, uuid.UUID] | None,
               limit: int) -> list[ActivityEntry]:
    """Newest first, keyset on (occurred_at, id)."""
    where = Where("organization_id = :org", org=org, limit=limit).filters("{c} = :{c}", (
        ("actor_id", actor_id), ("action", action), ("resource_type", resource_type), ("resource_id", resource_id)))
    where.filter("starts_with(action, :action_prefix)", action_prefix=action_prefix)
    where.filter("occurred_at >= :start", start=start).filter("occurred_at < :end", end=end)
    where.keyset("(occurred_at, id) <", after)
    return await every(conn, f"SELECT {_COLUMNS} FROM identity.activity_logs WHERE {where} "
                       "ORDER BY occurred_at DESC, id DESC LIMIT :limit", where.params, _row)


def _row(m: Any) -> ActivityEntry:
    row = dict(m)
    for key in ("before", "after"):
        if isinstance(row.get(key), str):
            row[key] = json.loads(row[key])
    return ActivityEntry(**row)


async def ensure_partitions(conn: Connection, first: date, months: int) -> None:
    """Creates the monthly partitions (with row-level security) that do not exist yet."""
    await conn.execute(text("SELECT identity.ensure_activity_partitions(:first, :months)"),
                       {"first": first, "months": months})
