"""crm's todo SQL."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

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


async def insert(conn: AsyncConnection, org: uuid.UUID, todo_id: uuid.UUID, values: dict[str, Any],
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


async def id_by_request_id(conn: AsyncConnection, org: uuid.UUID, request_id: str) -> uuid.UUID | None:
    return (await conn.execute(
        text("SELECT id FROM crm.todos WHERE organization_id = :org AND create_request_id = :rid"),
        {"org": org, "rid": request_id},
    )).scalar()


async def get(conn: AsyncConnection, org: uuid.UUID, todo_id: uuid.UUID, *,
              for_update: bool = False) -> dict[str, Any] | None:
    lock = " FOR UPDATE" if for_update else ""
    row = (await conn.execute(
        text(f"SELECT {_COLUMNS} FROM crm.todos WHERE organization_id = :org AND id = :id{lock}"),
        {"org": org, "id": todo_id},
    )).mappings().first()
    return dict(row) if row else None


async def donor_is_live(conn: AsyncConnection, org: uuid.UUID, donor_id: uuid.UUID) -> bool:
    return bool((await conn.execute(
        text("SELECT 1 FROM crm.donors WHERE organization_id = :org AND id = :id AND deleted_at IS NULL "
             "FOR SHARE"),
        {"org": org, "id": donor_id},
    )).scalar())


async def project_is_live(conn: AsyncConnection, org: uuid.UUID, project_id: uuid.UUID) -> bool:
    return bool((await conn.execute(
        text("SELECT 1 FROM crm.projects WHERE organization_id = :org AND id = :id AND deleted_at IS NULL "
             "FOR SHARE"),
        {"org": org, "id": project_id},
    )).scalar())


async def update(conn: AsyncConnection, org: uuid.UUID, todo_id: uuid.UUID, values: dict[str, Any]) -> None:
    sets = ", ".join(f"{c} = :{c}" for c in _UPDATE_COLUMNS)
    await conn.execute(
        text(f"UPDATE crm.todos SET {sets}, version = version + 1, updated_at = now() "
             "WHERE organization_id = :org AND id = :id"),
        {"org": org, "id": todo_id, **{c: values.get(c) for c in _UPDATE_COLUMNS}},
    )


async def set_status(conn: AsyncConnection, org: uuid.UUID, todo_id: uuid.UUID, status: str,
                     completed_by: uuid.UUID | None) -> None:
    """Completing records who and when; any other status clears both."""
    await conn.execute(
        text("UPDATE crm.todos SET status = :status, "
             "completed_at = CASE WHEN CAST(:done AS boolean) THEN now() END, completed_by = CAST(:by AS uuid), "
             "version = version + 1, updated_at = now() WHERE organization_id = :org AND id = :id"),
        {"org": org, "id": todo_id, "status": status, "done": status == "completed",
         "by": completed_by if status == "completed" else None},
    )


async def delete(conn: AsyncConnection, org: uuid.UUID, todo_id: uuid.UUID) -> None:
    await conn.execute(text("DELETE FROM crm.todos WHERE organization_id = :org AND id = :id"),
                       {"org": org, "id": todo_id})


async def page(conn: AsyncConnection, org: uuid.UUID, *, filters: dict[str, Any], after: list | None,
               limit: int) -> list[dict[str, Any]]:
    """By due date (none last), then create time and id; keyset on those; limit+1 to see if more follow."""
    where = ["organization_id = :org"]
    params: dict[str, Any] = {"org": org, "limit": limit}
    for column in ("assigned_to", "donor_id", "project_id", "status"):
        if filters.get(column) is not None:
            where.append(f"{column} = :{column}")
            params[column] = filters[column]
    if filters.get("due_before") is not None:
        where.append("due_date < :due_before")
        params["due_before"] = filters["due_before"]
    if filters.get("due_after") is not None:
        where.append("due_date > :due_after")
        params["due_after"] = filters["due_after"]
    if after is not None:
        where.append("(COALESCE(due_date, DATE '9999-12-31'), created_at, id) > (:after_due, :after_time, :after_id)")
        params["after_due"], params["after_time"], params["after_id"] = after
    rows = (await conn.execute(
        text(f"SELECT {_COLUMNS} FROM crm.todos WHERE {' AND '.join(where)} "
             "ORDER BY COALESCE(due_date, DATE '9999-12-31'), created_at, id LIMIT :limit"), params,
    )).mappings().all()
    return [dict(r) for r in rows]
