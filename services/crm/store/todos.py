"""crm's todo SQL."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from chassis import sql
from chassis.db import Connection
from chassis.sql import Where

_COLUMNS = (
    "id, organization_id, title, description, due_date, priority, status, donor_id, project_id, assigned_to, "
    "created_by, is_ai_generated, ai_reasoning, ai_confidence, completed_at, completed_by, version, created_at, "
    "updated_at, COALESCE(due_date, DATE '9999-12-31') AS due_key"
)
_CREATE_COLUMNS = ("title", "description", "due_date", "priority", "donor_id", "project_id", "assigned_to",
                   "is_ai_generated", "ai_reasoning", "ai_confidence")
_UPDATE_COLUMNS = ("title", "description", "due_date", "priority", "donor_id", "project_id", "assigned_to")
# Todos without a due date sort after every real one.
NO_DUE_DATE_KEY = "9999-12-31"


@dataclass(slots=True)
class Todo:
    """A stored todo; `due_key` is its due date, or 9999-12-31 when it has none (the sort key)."""

    id: uuid.UUID
    organization_id: uuid.UUID
    title: str
    description: str | None
    due_date: date | None
    priority: str
    status: str
    donor_id: uuid.UUID | None
    project_id: uuid.UUID | None
    assigned_to: uuid.UUID | None
    created_by: uuid.UUID | None
    is_ai_generated: bool
    ai_reasoning: str | None
    ai_confidence: Decimal | None
    completed_at: datetime | None
    completed_by: uuid.UUID | None
    version: int
    created_at: datetime
    updated_at: datetime
    due_key: date


# Built by position: _COLUMNS are a Todo's fields, in order (due_key computed last).
assert _COLUMNS.split(", ")[:-2] == [f.name for f in fields(Todo)][:-1] and _COLUMNS.endswith(" AS due_key")


def _todo(row: Any) -> Todo:
    return Todo(*row)


async def insert(conn: Connection, org: uuid.UUID, todo_id: uuid.UUID, values: dict[str, Any],
                 created_by: uuid.UUID | None, request_id: str | None) -> bool:
    """False when request_id was used already (the caller reads that todo)."""
    cols = ", ".join(_CREATE_COLUMNS)
    vals = ", ".join(f":{c}" for c in _CREATE_COLUMNS)
    result = await conn.execute(
        text(f"INSERT INTO crm.todos (id, organization_id, create_request_id, created_by, {cols}) "
             f"VALUES (:id, :org, :rid, :created_by, {vals}) "
             "ON CONFLICT (organization_id, create_request_id) WHERE create_request_id IS NOT NULL DO NOTHING"),
        {"id": todo_id, "org": org, "rid": request_id, "created_by": created_by,
         **{c: values.get(c) for c in _CREATE_COLUMNS}},
    )
    return result.rowcount == 1


async def id_by_request_id(conn: Connection, org: uuid.UUID, request_id: str) -> uuid.UUID | None:
    return await sql.id_by_request_id(conn, "crm.todos", org, request_id)


async def get(conn: Connection, org: uuid.UUID, todo_id: uuid.UUID, *,
              for_update: bool = False) -> Todo | None:
    return await sql.by_id(conn, f"SELECT {_COLUMNS} FROM crm.todos", org, todo_id, _todo, for_update=for_update)


# A linked donor or project is share-locked: it stays live until the todo is written.
async def donor_is_live(conn: Connection, org: uuid.UUID, donor_id: uuid.UUID) -> bool:
    return await sql.exists(conn, "crm.donors", org, donor_id, live=True, lock="FOR SHARE")


async def project_is_live(conn: Connection, org: uuid.UUID, project_id: uuid.UUID) -> bool:
    return await sql.exists(conn, "crm.projects", org, project_id, live=True, lock="FOR SHARE")


async def update(conn: Connection, org: uuid.UUID, todo_id: uuid.UUID, values: dict[str, Any]) -> None:
    await sql.update_row(conn, "crm.todos", org, todo_id, {c: values.get(c) for c in _UPDATE_COLUMNS})


async def set_status(conn: Connection, org: uuid.UUID, todo_id: uuid.UUID, status: str,
                     completed_by: uuid.UUID | None) -> None:
    """Completing records who and when; any other status clears both."""
    await conn.execute(
        text("UPDATE crm.todos SET status = :status, "
             "completed_at = CASE WHEN CAST(:done AS boolean) THEN now() END, completed_by = CAST(:by AS uuid), "
             "version = version + 1, updated_at = now() WHERE organization_id = :org AND id = :id"),
        {"org": org, "id": todo_id, "status": status, "done": status == "completed",
         "by": completed_by if status == "completed" else None},
    )


async def delete(conn: Connection, org: uuid.UUID, todo_id: uuid.UUID) -> None:
    await conn.execute(text("DELETE FROM crm.todos WHERE organization_id = :org AND id = :id"),
                       {"org": org, "id": todo_id})


async def page(conn: Connection, org: uuid.UUID, *, filters: dict[str, Any], after: list | None,
               limit: int) -> list[Todo]:
    """By due date (none last), then create time and id; keyset on those; limit+1 to see if more follow."""
    where = Where("organization_id = :org", org=org, limit=limit)
    where.filters("{c} = :{c}", ((c, filters.get(c)) for c in ("assigned_to", "donor_id", "project_id", "status")))
    where.filter("due_date < :due_before", due_before=filters.get("due_before"))
    where.filter("due_date > :due_after", due_after=filters.get("due_after"))
    where.keyset("(COALESCE(due_date, DATE '9999-12-31'), created_at, id) >", after)
    return await sql.every(conn, f"SELECT {_COLUMNS} FROM crm.todos WHERE {where} "
                           "ORDER BY COALESCE(due_date, DATE '9999-12-31'), created_at, id LIMIT :limit",
                           where.params, _todo)
