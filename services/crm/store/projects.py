"""crm's project SQL. A project is read with what it raised and from how many donors,
aggregated from crm.donations in the same statement (a page of projects is one query)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from chassis import sql
from chassis.db import Connection
from chassis.sql import Where, json_object

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
_CASTS = {"settings": "jsonb"}


@dataclass(slots=True)
class Project:
    """A stored project, with what it raised (net, in its currency) and from how many donors
    (None where a query does not aggregate them: a row locked for an update)."""

    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    description: str | None
    currency: str
    target_amount: Decimal | None
    start_date: date | None
    end_date: date | None
    status: str
    settings: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    raised_amount: Decimal | None = None
    donor_count: int | None = None


# Built by position: _COLUMNS (then raised_amount and donor_count, in _SELECT) are a Project's
# fields, in order.
assert [c.removeprefix("p.") for c in _COLUMNS.split(", ")] + ["raised_amount", "donor_count"] == [
    f.name for f in fields(Project)]


def _row(m: Any) -> Project:
    row = Project(*m)
    row.settings = json_object(row.settings)
    return row


def _params(values: dict[str, Any]) -> dict[str, Any]:
    p = {c: values.get(c) for c in _WRITE_COLUMNS}
    p["settings"] = json.dumps(values.get("settings") or {})
    return p


async def insert(conn: Connection, org: uuid.UUID, project_id: uuid.UUID, values: dict[str, Any],
                 request_id: str | None) -> bool:
    """False when request_id was used already (the caller reads that project)."""
    cols = ", ".join(_WRITE_COLUMNS)
    vals = ", ".join(f":{c}" if c not in _CASTS else f"CAST(:{c} AS {_CASTS[c]})" for c in _WRITE_COLUMNS)
    result = await conn.execute(
        text(f"INSERT INTO crm.projects (id, organization_id, create_request_id, {cols}) VALUES (:id, :org, :rid, "
             f"{vals}) ON CONFLICT (organization_id, create_request_id) WHERE create_request_id IS NOT NULL "
             "DO NOTHING"),
        {"id": project_id, "org": org, "rid": request_id, **_params(values)},
    )
    return result.rowcount == 1


async def id_by_request_id(conn: Connection, org: uuid.UUID, request_id: str) -> uuid.UUID | None:
    return await sql.id_by_request_id(conn, "crm.projects", org, request_id)


async def get(conn: Connection, org: uuid.UUID, project_id: uuid.UUID, *,
              include_deleted: bool = False) -> Project | None:
    return await sql.by_id(conn, _SELECT, org, project_id, _row, alias="p", live=not include_deleted)


async def get_for_update(conn: Connection, org: uuid.UUID, project_id: uuid.UUID) -> Project | None:
    return await sql.by_id(conn, f"SELECT {_COLUMNS} FROM crm.projects p", org, project_id, _row, alias="p",
                           live=True, for_update=True)


async def status_for_gift(conn: Connection, org: uuid.UUID, project_id: uuid.UUID) -> str | None:
    """The live project's status (None when there is none), share-locked: a status change
    waits for the gift's transaction, and the gift never lands on a project cancelled meanwhile."""
    return (await conn.execute(
        text("SELECT status FROM crm.projects WHERE organization_id = :org AND id = :id AND deleted_at IS NULL "
             "FOR SHARE"),
        {"org": org, "id": project_id},
    )).scalar()


async def update(conn: Connection, org: uuid.UUID, project_id: uuid.UUID, values: dict[str, Any]) -> None:
    await sql.update_row(conn, "crm.projects", org, project_id, _params(values), casts=_CASTS)


async def soft_delete(conn: Connection, org: uuid.UUID, project_id: uuid.UUID) -> None:
    await sql.soft_delete(conn, "crm.projects", org, project_id)


async def page(conn: Connection, org: uuid.UUID, *, status: str | None, after: list | None,
               limit: int) -> list[Project]:
    """Newest first, keyset on (created_at, id); limit+1 to see if more follow."""
    where = Where("p.organization_id = :org", "p.deleted_at IS NULL", org=org, limit=limit)
    where.filter("p.status = :status", status=status).keyset("(p.created_at, p.id) <", after)
    return await sql.every(conn, f"{_SELECT} WHERE {where} ORDER BY p.created_at DESC, p.id DESC LIMIT :limit",
                           where.params, _row)
