"""crm's project SQL. A project is read with what it raised and from how many donors,
aggregated from crm.donations in the same statement (a page of projects is one query)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_COLUMNS = (
    "p.id, p.organization_id, p.name, p.description, p.currency, p.target_amount, p.start_date, p.end_date, "
    "p.status, p.settings, p.version, p.created_at, p.updated_at, p.deleted_at"
)
# Gifts in the project's currency add up, net of refunds; donors count in any currency; a
# fully refunded gift counts for neither.
_RAISED = (
    "LEFT JOIN LATERAL (SELECT COALESCE(sum(g.amount - g.refunded_amount) FILTER (WHERE g.currency = p.currency), 0) "
    "AS raised_amount, count(DISTINCT g.donor_id) AS donor_count FROM crm.donations g "
    "WHERE g.organization_id = p.organization_id AND g.project_id = p.id AND g.refunded_amount < g.amount) agg ON true"
)
_SELECT = f"SELECT {_COLUMNS}, agg.raised_amount, agg.donor_count FROM crm.projects p {_RAISED}"
_WRITE_COLUMNS = ("name", "description", "currency", "target_amount", "start_date", "end_date", "status", "settings")


def _row(m: Any) -> dict[str, Any]:
    row = dict(m)
    if isinstance(row.get("settings"), str):
        row["settings"] = json.loads(row["settings"])
    return row


def _params(values: dict[str, Any]) -> dict[str, Any]:
    p = {c: values.get(c) for c in _WRITE_COLUMNS}
    p["settings"] = json.dumps(values.get("settings") or {})
    return p


async def insert(conn: AsyncConnection, org: uuid.UUID, project_id: uuid.UUID, values: dict[str, Any],
                 request_id: str | None) -> bool:
    """False when request_id was used already (the caller reads that project)."""
    cols = ", ".join(_WRITE_COLUMNS)
    vals = ", ".join(f":{c}" if c != "settings" else "CAST(:settings AS jsonb)" for c in _WRITE_COLUMNS)
    result = await conn.execute(
        text(f"INSERT INTO crm.projects (id, organization_id, create_request_id, {cols}) VALUES (:id, :org, :rid, "
             f"{vals}) ON CONFLICT (organization_id, create_request_id) WHERE create_request_id IS NOT NULL "
             "DO NOTHING"),
        {"id": project_id, "org": org, "rid": request_id, **_params(values)},
    )
    return result.rowcount == 1


async def id_by_request_id(conn: AsyncConnection, org: uuid.UUID, request_id: str) -> uuid.UUID | None:
    return (await conn.execute(
        text("SELECT id FROM crm.projects WHERE organization_id = :org AND create_request_id = :rid"),
        {"org": org, "rid": request_id},
    )).scalar()


async def get(conn: AsyncConnection, org: uuid.UUID, project_id: uuid.UUID, *,
              include_deleted: bool = False) -> dict[str, Any] | None:
    live = "" if include_deleted else " AND p.deleted_at IS NULL"
    row = (await conn.execute(
        text(f"{_SELECT} WHERE p.organization_id = :org AND p.id = :id{live}"), {"org": org, "id": project_id}
    )).mappings().first()
    return _row(row) if row else None


async def get_for_update(conn: AsyncConnection, org: uuid.UUID, project_id: uuid.UUID) -> dict[str, Any] | None:
    row = (await conn.execute(
        text(f"SELECT {_COLUMNS} FROM crm.projects p "
             "WHERE p.organization_id = :org AND p.id = :id AND p.deleted_at IS NULL FOR UPDATE"),
        {"org": org, "id": project_id},
    )).mappings().first()
    return _row(row) if row else None


async def status_for_gift(conn: AsyncConnection, org: uuid.UUID, project_id: uuid.UUID) -> str | None:
    """The live project's status (None when there is none), share-locked: a status change
    waits for the gift's transaction, and the gift never lands on a project cancelled meanwhile."""
    return (await conn.execute(
        text("SELECT status FROM crm.projects WHERE organization_id = :org AND id = :id AND deleted_at IS NULL "
             "FOR SHARE"),
        {"org": org, "id": project_id},
    )).scalar()


async def update(conn: AsyncConnection, org: uuid.UUID, project_id: uuid.UUID, values: dict[str, Any]) -> None:
    sets = ", ".join(f"{c} = :{c}" if c != "settings" else "settings = CAST(:settings AS jsonb)"
                     for c in _WRITE_COLUMNS)
    await conn.execute(
        text(f"UPDATE crm.projects SET {sets}, version = version + 1, updated_at = now() "
             "WHERE organization_id = :org AND id = :id"),
        {"org": org, "id": project_id, **_params(values)},
    )


async def soft_delete(conn: AsyncConnection, org: uuid.UUID, project_id: uuid.UUID) -> None:
    await conn.execute(
        text("UPDATE crm.projects SET deleted_at = now(), updated_at = now(), version = version + 1 "
             "WHERE organization_id = :org AND id = :id"),
        {"org": org, "id": project_id},
    )


async def page(conn: AsyncConnection, org: uuid.UUID, *, status: str | None, after: list | None,
               limit: int) -> list[dict[str, Any]]:
    """Newest first, keyset on (created_at, id); limit+1 to see if more follow."""
    where = ["p.organization_id = :org", "p.deleted_at IS NULL"]
    params: dict[str, Any] = {"org": org, "limit": limit}
    if status:
        where.append("p.status = :status")
        params["status"] = status
    if after is not None:
        where.append("(p.created_at, p.id) < (:after_time, :after_id)")
        params["after_time"], params["after_id"] = after
    rows = (await conn.execute(
        text(f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY p.created_at DESC, p.id DESC LIMIT :limit"), params
    )).mappings().all()
    return [_row(r) for r in rows]
