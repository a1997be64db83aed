"""ai.classification_runs: unattended classifications of many donors, and their progress."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from chassis.db import Connection
from chassis.sql import by_name, first

COLUMNS = ("id, organization_id, donor_ids, all_donors, suggest_todos, status, cursor, classified_count, "
           "failed_count, todos_created, requested_by, completed_at, created_at")


@dataclass
class Run:
    id: uuid.UUID
    organization_id: uuid.UUID
    donor_ids: list[uuid.UUID]
    all_donors: bool
    suggest_todos: bool
    status: str
    cursor: str
    classified_count: int
    failed_count: int
    todos_created: int
    requested_by: uuid.UUID | None
    completed_at: datetime | None
    created_at: datetime


async def insert(conn: Connection, org: uuid.UUID, donor_ids: list[uuid.UUID], all_donors: bool,
                 suggest_todos: bool, requested_by: uuid.UUID | None, request_id: str) -> Run | None:
    """The new run; None when a run with this request id exists already."""
    return await first(conn, f"INSERT INTO ai.classification_runs (id, organization_id, donor_ids, all_donors, "
                             "suggest_todos, requested_by, create_request_id) VALUES (:id, :org, "
                             "CAST(:donors AS uuid[]), :all, :suggest, :by, :rid) ON CONFLICT DO NOTHING "
                             f"RETURNING {COLUMNS}",
                       {"id": uuid.uuid4(), "org": org, "donors": donor_ids, "all": all_donors,
                        "suggest": suggest_todos, "by": requested_by, "rid": request_id or None}, by_name(Run))


async def by_request_id(conn: Connection, org: uuid.UUID, request_id: str) -> Run | None:
    return await first(conn, f"SELECT {COLUMNS} FROM ai.classification_runs WHERE organization_id = :org "
                             "AND create_request_id = :rid", {"org": org, "rid": request_id}, by_name(Run))


async def get(conn: Connection, org: uuid.UUID, run_id: uuid.UUID, *, for_update: bool = False) -> Run | None:
    lock = " FOR UPDATE" if for_update else ""
    return await first(conn, f"SELECT {COLUMNS} FROM ai.classification_runs WHERE organization_id = :org "
                             f"AND id = :id{lock}", {"org": org, "id": run_id}, by_name(Run))


async def progress(conn: Connection, org: uuid.UUID, run_id: uuid.UUID, cursor: str, classified: int, failed: int,
                   todos: int, done: bool) -> None:
    await conn.execute(
        "UPDATE ai.classification_runs SET cursor = :cursor, classified_count = classified_count + :c, "
        "failed_count = failed_count + :f, todos_created = todos_created + :t, "
        "status = CASE WHEN :done THEN 'completed' ELSE status END, "
        "completed_at = CASE WHEN :done THEN now() ELSE completed_at END, updated_at = now() "
        "WHERE organization_id = :org AND id = :id",
        {"cursor": cursor, "c": classified, "f": failed, "t": todos, "done": done, "org": org, "id": run_id})
