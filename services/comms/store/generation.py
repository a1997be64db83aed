"""comms.email_generation_sessions, comms.generation_jobs and comms.generated_emails."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chassis import sql
from chassis.db import Connection
from chassis.sql import Where, by_name

SESSION_COLUMNS = ("id, organization_id, name, description, status, instructions, donor_selection, "
                   "selected_donor_ids, template, signer_user_id, signer_name, total_emails, generated_count, "
                   "failed_count, job_started_at, job_completed_at, created_by, version, created_at, updated_at")

# Opens and clicks by people, counted from the carrying message's events when read (as messages do).
_PEOPLE = ("(SELECT count(*) FROM comms.email_events e WHERE e.organization_id = g.organization_id "
           "AND e.message_id = g.message_id AND e.kind = '{kind}' AND NOT e.machine)")
EMAIL_COLUMNS = ("g.id, g.organization_id, g.session_id, g.donor_id, g.subject, g.body_plain, g.body_html, g.status, "
                 "g.status_reason, g.approved_by, g.approved_at, g.sent_at, g.scheduled_for, g.sent_by_staff_id, "
                 "g.message_id, g.ai_model, g.token_usage, g.generation_time_ms, g.donor_context_used, g.version, "
                 f"g.created_at, g.updated_at, {_PEOPLE.format(kind='opened')} AS open_count, "
                 f"{_PEOPLE.format(kind='clicked')} AS click_count")


@dataclass
class Session:
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    description: str
    status: str
    instructions: str
    donor_selection: Any
    selected_donor_ids: list[uuid.UUID]
    template: str
    signer_user_id: uuid.UUID | None
    signer_name: str
    total_emails: int
    generated_count: int
    failed_count: int
    job_started_at: datetime | None
    job_completed_at: datetime | None
    created_by: uuid.UUID | None
    version: int
    created_at: datetime
    updated_at: datetime

    @property
    def selection(self) -> dict[str, Any]:
        return sql.json_object(self.donor_selection)


@dataclass
class GeneratedEmail:
    id: uuid.UUID
    organization_id: uuid.UUID
    session_id: uuid.UUID
    donor_id: uuid.UUID
    subject: str
    body_plain: str
    body_html: str
    status: str
    status_reason: str
    approved_by: uuid.UUID | None
    approved_at: datetime | None
    sent_at: datetime | None
    scheduled_for: datetime | None
    sent_by_staff_id: uuid.UUID | None
    message_id: uuid.UUID | None
    ai_model: str
    token_usage: int
    generation_time_ms: int
    donor_context_used: Any
    version: int
    created_at: datetime
    updated_at: datetime
    open_count: int = 0
    click_count: int = 0
    grounding: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.grounding = sql.json_object(self.donor_context_used)


# -- sessions ----------------------------------------------------------------------------------


async def insert_session(conn: Connection, values: dict[str, Any]) -> bool:
    """False when its request id was used already (nothing inserted)."""
    values = {**values, "donor_selection": json.dumps(values["donor_selection"])}
    cols = ", ".join(values)
    result = await conn.execute(
        f"INSERT INTO comms.email_generation_sessions ({cols}) VALUES "
        f"({', '.join(':' + c for c in values)}) ON CONFLICT DO NOTHING", values)
    return result.rowcount == 1


async def session_by_request_id(conn: Connection, org: uuid.UUID, request_id: str) -> uuid.UUID | None:
    return await sql.id_by_request_id(conn, "comms.email_generation_sessions", org, request_id)


async def get_session(conn: Connection, org: uuid.UUID, session_id: uuid.UUID, *,
                      for_update: bool = False) -> Session | None:
    return await sql.by_id(conn, f"SELECT {SESSION_COLUMNS} FROM comms.email_generation_sessions", org, session_id,
                           by_name(Session), for_update=for_update)


async def page_sessions(conn: Connection, org: uuid.UUID, status: str | None, after: list[Any] | None,
                        limit: int) -> list[Session]:
    """Newest first."""
    where = Where("organization_id = :org", org=org, limit=limit)
    where.filter("status = :status", status=status)
    where.keyset("(created_at, id) <", after)
    return await sql.every(conn, f"SELECT {SESSION_COLUMNS} FROM comms.email_generation_sessions WHERE {where} "
                                 "ORDER BY created_at DESC, id DESC LIMIT :limit", where.params, by_name(Session))


async def insert_jobs(conn: Connection, org: uuid.UUID, session_id: uuid.UUID, donors: list[uuid.UUID]) -> None:
    await conn.execute(
        "INSERT INTO comms.generation_jobs (organization_id, session_id, donor_id) "
        "SELECT :org, :session, d FROM unnest(CAST(:donors AS uuid[])) AS d",
        {"org": org, "session": session_id, "donors": donors})


async def cancel(conn: Connection, org: uuid.UUID, session_id: uuid.UUID) -> int:
    """The session's pending jobs cancelled, the session too; how many jobs it stopped."""
    stopped = await conn.execute(
        "UPDATE comms.generation_jobs SET status = 'cancelled', updated_at = now() "
        "WHERE organization_id = :org AND session_id = :s AND status = 'pending'", {"org": org, "s": session_id})
    await conn.execute(
        "UPDATE comms.email_generation_sessions SET status = 'cancelled', job_completed_at = now(), "
        "version = version + 1, updated_at = now() WHERE organization_id = :org AND id = :s",
        {"org": org, "s": session_id})
    return stopped.rowcount


# -- jobs --------------------------------------------------------------------------------------


async def job_status(conn: Connection, org: uuid.UUID, session_id: uuid.UUID, donor_id: uuid.UUID) -> str | None:
    return (await conn.execute(
        "SELECT status FROM comms.generation_jobs WHERE organization_id = :org AND session_id = :s AND donor_id = :d",
        {"org": org, "s": session_id, "d": donor_id})).scalar()


async def finish_job(conn: Connection, org: uuid.UUID, session_id: uuid.UUID, donor_id: uuid.UUID, status: str,
                     error: str = "") -> bool:
    """The pending job marked done or failed, and the session's counters moved (the session is
    completed with its last job). False when the job was not pending (nothing changed)."""
    counter = "generated_count" if status == "done" else "failed_count"
    row = (await conn.execute(
        "WITH j AS (UPDATE comms.generation_jobs SET status = :status, error = :error, updated_at = now() "
        "  WHERE organization_id = :org AND session_id = :s AND donor_id = :d AND status = 'pending' RETURNING 1) "
        f"UPDATE comms.email_generation_sessions SET {counter} = {counter} + 1, "
        "  status = CASE WHEN status = 'generating' AND generated_count + failed_count + 1 >= total_emails "
        "    THEN 'completed' ELSE status END, "
        "  job_completed_at = CASE WHEN status = 'generating' AND generated_count + failed_count + 1 >= total_emails "
        "    THEN now() ELSE job_completed_at END, version = version + 1, updated_at = now() "
        "WHERE organization_id = :org AND id = :s AND EXISTS (SELECT 1 FROM j) RETURNING status",
        {"status": status, "error": error[:1000], "org": org, "s": session_id, "d": donor_id})).first()
    return row is not None


# -- generated emails --------------------------------------------------------------------------


async def insert_email(conn: Connection, values: dict[str, Any]) -> bool:
    """False when the session already has the donor's email (nothing inserted)."""
    values = {**values, "donor_context_used": json.dumps(values["donor_context_used"])}
    cols = ", ".join(values)
    result = await conn.execute(
        f"INSERT INTO comms.generated_emails ({cols}) VALUES ({', '.join(':' + c for c in values)}) "
        "ON CONFLICT (organization_id, session_id, donor_id) DO NOTHING", values)
    return result.rowcount == 1


async def email_id_for(conn: Connection, org: uuid.UUID, session_id: uuid.UUID,
                       donor_id: uuid.UUID) -> uuid.UUID | None:
    return (await conn.execute(
        "SELECT id FROM comms.generated_emails WHERE organization_id = :org AND session_id = :s AND donor_id = :d",
        {"org": org, "s": session_id, "d": donor_id})).scalar()


async def get_email(conn: Connection, org: uuid.UUID, email_id: uuid.UUID, *,
                    for_update: bool = False) -> GeneratedEmail | None:
    row = await sql.first(conn, f"SELECT {EMAIL_COLUMNS} FROM comms.generated_emails g "
                                f"WHERE g.organization_id = :org AND g.id = :id{' FOR UPDATE' if for_update else ''}",
                          {"org": org, "id": email_id}, by_name(GeneratedEmail))
    return row


async def page_emails(conn: Connection, org: uuid.UUID, session_id: uuid.UUID, status: str | None,
                      after: list[Any] | None, limit: int) -> list[GeneratedEmail]:
    where = Where("g.organization_id = :org", "g.session_id = :session", org=org, session=session_id, limit=limit)
    where.filter("g.status = :status", status=status)
    where.keyset("(g.created_at, g.id) >", after)
    return await sql.every(conn, f"SELECT {EMAIL_COLUMNS} FROM comms.generated_emails g WHERE {where} "
                                 "ORDER BY g.created_at, g.id LIMIT :limit", where.params, by_name(GeneratedEmail))


async def emails_in(conn: Connection, org: uuid.UUID, session_id: uuid.UUID, ids: list[uuid.UUID] | None,
                    statuses: tuple[str, ...]) -> list[GeneratedEmail]:
    """The session's emails in these statuses (the named ones, or all), locked for a change."""
    where = Where("g.organization_id = :org", "g.session_id = :session", "g.status = ANY(CAST(:statuses AS text[]))",
                  org=org, session=session_id, statuses=list(statuses))
    if ids is not None:
        where.add("g.id = ANY(CAST(:ids AS uuid[]))", ids=ids)
    return await sql.every(conn, f"SELECT {EMAIL_COLUMNS} FROM comms.generated_emails g WHERE {where} "
                                 "ORDER BY g.created_at, g.id FOR UPDATE OF g", where.params, by_name(GeneratedEmail))


async def update_email(conn: Connection, org: uuid.UUID, email_id: uuid.UUID, **changes: Any) -> None:
    sets = ", ".join(f"{k} = :{k}" for k in changes)
    await conn.execute(f"UPDATE comms.generated_emails SET {sets}, version = version + 1, updated_at = now() "
                       "WHERE organization_id = :org AND id = :id", {**changes, "org": org, "id": email_id})


async def approve_drafts(conn: Connection, org: uuid.UUID, session_id: uuid.UUID, ids: list[uuid.UUID] | None,
                         by: uuid.UUID | None) -> int:
    where = Where("organization_id = :org", "session_id = :session", "status = 'draft'", org=org, session=session_id,
                  by=by)
    if ids is not None:
        where.add("id = ANY(CAST(:ids AS uuid[]))", ids=ids)
    result = await conn.execute(
        "UPDATE comms.generated_emails SET status = 'approved', approved_by = :by, approved_at = now(), "
        f"status_reason = '', version = version + 1, updated_at = now() WHERE {where}", where.params)
    return result.rowcount


async def existing_ids(conn: Connection, org: uuid.UUID, session_id: uuid.UUID, ids: list[uuid.UUID]) -> set:
    return {r["id"] for r in await sql.every(
        conn, "SELECT id FROM comms.generated_emails WHERE organization_id = :org AND session_id = :s "
              "AND id = ANY(CAST(:ids AS uuid[]))", {"org": org, "s": session_id, "ids": ids})}


async def mark_by_message(conn: Connection, org: uuid.UUID, message_id: uuid.UUID, status: str,
                          reason: str = "") -> None:
    """The generated email a message carries follows its delivery: sent, or failed with why."""
    await conn.execute(
        "UPDATE comms.generated_emails SET status = :status, status_reason = :reason, "
        f"sent_at = {'now()' if status == 'sent' else 'sent_at'}, version = version + 1, updated_at = now() "
        "WHERE organization_id = :org AND message_id = :m AND status = 'scheduled'",
        {"status": status, "reason": reason[:1000], "org": org, "m": message_id})
