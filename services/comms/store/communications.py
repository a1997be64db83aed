"""comms.communications: the log of every contact with a donor."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from chassis import sql
from chassis.db import Connection
from chassis.sql import Where

COLUMNS = ("id, organization_id, donor_id, channel, direction, subject, content, occurred_at, logged_by, "
           "message_id, created_at")


async def insert(conn: Connection, values: dict[str, Any]) -> bool:
    cols = ", ".join(values)
    result = await conn.execute(
        f"INSERT INTO comms.communications ({cols}) VALUES ({', '.join(':' + c for c in values)}) "
        "ON CONFLICT DO NOTHING", values)
    return result.rowcount == 1


async def id_by_request_id(conn: Connection, org: uuid.UUID, request_id: str) -> uuid.UUID | None:
    return await sql.id_by_request_id(conn, "comms.communications", org, request_id)


async def get(conn: Connection, org: uuid.UUID, comm_id: uuid.UUID) -> dict[str, Any] | None:
    return await sql.by_id(conn, f"SELECT {COLUMNS} FROM comms.communications", org, comm_id)


async def page(conn: Connection, org: uuid.UUID, *, donor_id: uuid.UUID | None, channel: str | None,
               after_time: datetime | None, before_time: datetime | None, after: list[Any] | None,
               limit: int) -> list[dict[str, Any]]:
    where = Where("organization_id = :org", org=org, limit=limit)
    where.filter("donor_id = :donor", donor=donor_id).filter("channel = :channel", channel=channel)
    where.filter("occurred_at >= :t0", t0=after_time).filter("occurred_at < :t1", t1=before_time)
    where.keyset("(occurred_at, id) <", after)
    return await sql.every(conn, f"SELECT {COLUMNS} FROM comms.communications WHERE {where} "
                                 "ORDER BY occurred_at DESC, id DESC LIMIT :limit", where.params)
