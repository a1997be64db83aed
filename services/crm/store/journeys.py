"""crm's journey SQL."""

from __future__ import annotations

import json
import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


async def get_graph(conn: AsyncConnection, org: uuid.UUID) -> dict | None:
    value = (await conn.execute(
        text("SELECT graph FROM crm.journeys WHERE organization_id = :org"), {"org": org}
    )).scalar()
    return json.loads(value) if isinstance(value, str) else value


async def insert_if_absent(conn: AsyncConnection, org: uuid.UUID, graph: dict) -> bool:
    result = await conn.execute(
        text("INSERT INTO crm.journeys (organization_id, graph) VALUES (:org, CAST(:g AS jsonb)) "
             "ON CONFLICT (organization_id) DO NOTHING"),
        {"org": org, "g": json.dumps(graph)},
    )
    return result.rowcount == 1
