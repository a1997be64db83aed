"""ai.person_research: one row per version of a donor's research."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chassis.db import Connection
from chassis.sql import by_name, every, first

COLUMNS = ("id, organization_id, donor_id, version, status, basis, donor_facts, summary, claims, sources, model, "
           "error, requested_by, completed_at, created_at")


@dataclass
class Research:
    id: uuid.UUID
    organization_id: uuid.UUID
    donor_id: uuid.UUID
    version: int
    status: str
    basis: str | None
    donor_facts: Any
    summary: str
    claims: Any
    sources: Any
    model: str
    error: str
    requested_by: uuid.UUID | None
    completed_at: datetime | None
    created_at: datetime
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("donor_facts", "claims", "sources"):
            value = getattr(self, name)
            if isinstance(value, str):
                setattr(self, name, json.loads(value))


async def by_request_id(conn: Connection, org: uuid.UUID, request_id: str) -> Research | None:
    return await first(conn, f"SELECT {COLUMNS} FROM ai.person_research WHERE organization_id = :org "
                             "AND create_request_id = :rid", {"org": org, "rid": request_id}, by_name(Research))


async def insert(conn: Connection, org: uuid.UUID, donor: uuid.UUID, facts: dict, requested_by: uuid.UUID | None,
                 request_id: str | None) -> Research:
    # One writer at a time per donor picks the next version.
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))", {"k": f"ai.research:{donor}"})
    return await first(conn, f"""
        INSERT INTO ai.person_research (id, organization_id, donor_id, version, donor_facts, requested_by,
          create_request_id)
        VALUES (:id, :org, :donor, (SELECT COALESCE(max(version), 0) + 1 FROM ai.person_research
                                    WHERE organization_id = :org AND donor_id = :donor),
                CAST(:facts AS jsonb), :by, :rid)
        RETURNING {COLUMNS}""", {"id": uuid.uuid4(), "org": org, "donor": donor, "facts": json.dumps(facts),
                                 "by": requested_by, "rid": request_id}, by_name(Research))


async def get(conn: Connection, org: uuid.UUID, research_id: uuid.UUID, *, for_update: bool = False) -> Research | None:
    return await first(conn, f"SELECT {COLUMNS} FROM ai.person_research WHERE organization_id = :org AND id = :id"
                             f"{' FOR UPDATE' if for_update else ''}", {"org": org, "id": research_id},
                       by_name(Research))


async def for_donor(conn: Connection, org: uuid.UUID, donor: uuid.UUID, version: int) -> Research | None:
    if version:
        return await first(conn, f"SELECT {COLUMNS} FROM ai.person_research WHERE organization_id = :org "
                                 "AND donor_id = :donor AND version = :v", {"org": org, "donor": donor, "v": version},
                           by_name(Research))
    return await first(conn, f"SELECT {COLUMNS} FROM ai.person_research WHERE organization_id = :org "
                             "AND donor_id = :donor ORDER BY version DESC LIMIT 1", {"org": org, "donor": donor},
                       by_name(Research))


async def latest_completed(conn: Connection, org: uuid.UUID, donor: uuid.UUID) -> Research | None:
    return await first(conn, f"SELECT {COLUMNS} FROM ai.person_research WHERE organization_id = :org "
                             "AND donor_id = :donor AND status = 'completed' ORDER BY version DESC LIMIT 1",
                       {"org": org, "donor": donor}, by_name(Research))


async def page(conn: Connection, org: uuid.UUID, donor: uuid.UUID, before_version: int | None,
               limit: int) -> list[Research]:
    return await every(conn, f"SELECT {COLUMNS} FROM ai.person_research WHERE organization_id = :org "
                             "AND donor_id = :donor AND (CAST(:before AS integer) IS NULL OR version < :before) "
                             "ORDER BY version DESC LIMIT :limit",
                       {"org": org, "donor": donor, "before": before_version, "limit": limit}, by_name(Research))


async def finish(conn: Connection, org: uuid.UUID, research_id: uuid.UUID, *, status: str, basis: str | None,
                 summary: str, claims: list[dict], sources: list[dict], model: str, error: str) -> Research:
    return await first(conn, f"""
        UPDATE ai.person_research SET status = :status, basis = :basis, summary = :summary,
          claims = CAST(:claims AS jsonb), sources = CAST(:sources AS jsonb), model = :model, error = :error,
          completed_at = now(), updated_at = now()
        WHERE organization_id = :org AND id = :id RETURNING {COLUMNS}""",
        {"org": org, "id": research_id, "status": status, "basis": basis, "summary": summary,
         "claims": json.dumps(claims), "sources": json.dumps(sources), "model": model, "error": error},
        by_name(Research))
