"""crm's journey SQL."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import text

from chassis.db import Connection
from chassis.sql import Where, by_name, every


class StageChange(NamedTuple):
    """One move of a donor along the journey (crm.donor_stage_history)."""

    id: uuid.UUID
    donor_id: uuid.UUID
    from_stage: str | None
    to_stage: str
    reason: str
    changed_by: str
    changed_at: datetime


async def get_graph(conn: Connection, org: uuid.UUID) -> dict | None:
    value = (await conn.execute(
        text("SELECT graph FROM crm.journeys WHERE organization_id = :org"), {"org": org}
    )).scalar()
    return json.loads(value) if isinstance(value, str) else value


async def insert_if_absent(conn: Connection, org: uuid.UUID, graph: dict) -> bool:
    result = await conn.execute(
        text("INSERT INTO crm.journeys (organization_id, graph) VALUES (:org, CAST(:g AS jsonb)) "
             "ON CONFLICT (organization_id) DO NOTHING"),
        {"org": org, "g": json.dumps(graph)},
    )
    return result.rowcount == 1


def _graph(value: Any) -> dict:
    return json.loads(value) if isinstance(value, str) else value


async def get_versioned(conn: Connection, org: uuid.UUID, *, lock: str = "") -> tuple[dict, int] | None:
    """(graph, version), or None when the organization has no stored journey. lock: "" or
    "FOR SHARE" (a move: the journey stays as read until it commits) or "FOR UPDATE" (an edit)."""
    assert lock in ("", "FOR SHARE", "FOR UPDATE")
    row = (await conn.execute(
        text(f"SELECT graph, version FROM crm.journeys WHERE organization_id = :org {lock}"), {"org": org}
    )).mappings().first()
    return (_graph(row["graph"]), row["version"]) if row else None


async def replace_graph(conn: Connection, org: uuid.UUID, graph: dict) -> int:
    """Store a new graph; returns the new version."""
    return (await conn.execute(
        text("UPDATE crm.journeys SET graph = CAST(:g AS jsonb), version = version + 1, updated_at = now() "
             "WHERE organization_id = :org RETURNING version"),
        {"org": org, "g": json.dumps(graph)},
    )).scalar()


async def donors_in_stages(conn: Connection, org: uuid.UUID, stages: list[str]) -> dict[str, int]:
    """How many live donors are in each of these stages (stages with none are left out)."""
    rows = (await conn.execute(
        text("SELECT journey_stage, count(*) AS n FROM crm.donors WHERE organization_id = :org "
             "AND deleted_at IS NULL AND journey_stage = ANY(CAST(:stages AS text[])) GROUP BY journey_stage"),
        {"org": org, "stages": stages},
    )).mappings().all()
    return {r["journey_stage"]: r["n"] for r in rows}


_HISTORY_COLUMNS = "id, donor_id, from_stage, to_stage, reason, changed_by, changed_at"


async def move_donor(conn: Connection, org: uuid.UUID, donor_id: uuid.UUID, change_id: uuid.UUID,
                     from_stage: str | None, to_stage: str, reason: str, changed_by: str) -> StageChange:
    """Set the donor's stage (a new version) and record the change; the donor row must be locked."""
    row = (await conn.execute(
        text(f"""
        WITH donor AS (
          UPDATE crm.donors SET journey_stage = :to_stage, version = version + 1, updated_at = now()
          WHERE organization_id = :org AND id = :donor_id RETURNING id
        )
        INSERT INTO crm.donor_stage_history (id, organization_id, donor_id, from_stage, to_stage, reason,
          changed_by, changed_at)
        SELECT :id, :org, donor.id, :from_stage, :to_stage, :reason, :changed_by, clock_timestamp() FROM donor
        RETURNING {_HISTORY_COLUMNS}
        """),
        {"org": org, "donor_id": donor_id, "id": change_id, "from_stage": from_stage, "to_stage": to_stage,
         "reason": reason, "changed_by": changed_by},
    )).mappings().one()
    return StageChange(**row)


async def history_page(conn: Connection, org: uuid.UUID, donor_id: uuid.UUID, *, after: list | None,
                       limit: int) -> list[StageChange]:
    """Newest first, keyset on (changed_at, id)."""
    where = Where("organization_id = :org", "donor_id = :donor", org=org, donor=donor_id, limit=limit)
    where.keyset("(changed_at, id) <", after)
    return await every(conn, f"SELECT {_HISTORY_COLUMNS} FROM crm.donor_stage_history WHERE {where} "
                       "ORDER BY changed_at DESC, id DESC LIMIT :limit", where.params, by_name(StageChange))
