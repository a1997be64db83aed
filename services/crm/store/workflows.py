"""crm's workflow SQL: workflows and their versions, executions, the due-actions table, and the
donor facts a workflow's conditions read."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import text

from chassis import sql
from chassis.db import Connection
from chassis.sql import Where

DUE_CHANNEL = "crm_workflow_due"


def _j(value: Any) -> str:
    return json.dumps(value, default=str)


def _load(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


# -- workflows -----------------------------------------------------------------------------------

_WF_COLUMNS = ("id, organization_id, name, description, category, definition, variables, is_template, template_id, "
               "status, definition_version, webhook_secret_sealed, created_by, version, created_at, updated_at")


@dataclass(slots=True)
class Workflow:
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    description: str | None
    category: str | None
    definition: dict
    variables: dict
    is_template: bool
    template_id: str | None
    status: str
    definition_version: int
    webhook_secret_sealed: str
    created_by: uuid.UUID | None
    version: int
    created_at: datetime
    updated_at: datetime


def _workflow(row: Any) -> Workflow:
    w = Workflow(*row)
    w.definition, w.variables = _load(w.definition), _load(w.variables)
    return w


async def insert_workflow(conn: Connection, org: uuid.UUID, wid: uuid.UUID, values: dict[str, Any],
                          trigger_events: list[str], secret_sealed: str, created_by: uuid.UUID | None,
                          request_id: str | None) -> bool:
    """False when request_id was used already (the caller reads that workflow)."""
    result = await conn.execute(
        text("INSERT INTO crm.workflows (id, organization_id, name, description, category, definition, variables, "
             "trigger_events, is_template, template_id, webhook_secret_sealed, created_by, create_request_id) "
             "VALUES (:id, :org, :name, :description, :category, CAST(:definition AS jsonb), "
             "CAST(:variables AS jsonb), :events, :is_template, :template_id, :secret, :by, :rid) "
             "ON CONFLICT (organization_id, create_request_id) WHERE create_request_id IS NOT NULL DO NOTHING"),
        {"id": wid, "org": org, "name": values["name"], "description": values["description"] or None,
         "category": values["category"] or None, "definition": _j(values["definition"]),
         "variables": _j(values["variables"] or {}), "events": trigger_events, "is_template": values["is_template"],
         "template_id": values["template_id"] or None, "secret": secret_sealed, "by": created_by, "rid": request_id},
    )
    if result.rowcount == 1:
        await insert_version(conn, org, wid, 1, values["definition"], values["variables"] or {})
    return result.rowcount == 1


async def insert_version(conn: Connection, org: uuid.UUID, wid: uuid.UUID, version: int, definition: dict,
                         variables: dict) -> None:
    await conn.execute(
        text("INSERT INTO crm.workflow_versions (organization_id, workflow_id, definition_version, definition, "
             "variables) VALUES (:org, :wid, :v, CAST(:d AS jsonb), CAST(:vars AS jsonb))"),
        {"org": org, "wid": wid, "v": version, "d": _j(definition), "vars": _j(variables)})


async def workflow_id_by_request_id(conn: Connection, org: uuid.UUID, request_id: str) -> uuid.UUID | None:
    return await sql.id_by_request_id(conn, "crm.workflows", org, request_id)


async def get_workflow(conn: Connection, org: uuid.UUID, wid: uuid.UUID, *, for_update: bool = False,
                       with_deleted: bool = False) -> Workflow | None:
    live = "" if with_deleted else " AND deleted_at IS NULL"
    lock = " FOR UPDATE" if for_update else ""
    row = (await conn.execute(
        text(f"SELECT {_WF_COLUMNS} FROM crm.workflows WHERE organization_id = :org AND id = :id{live}{lock}"),
        {"org": org, "id": wid})).first()
    return _workflow(row) if row else None


async def page_workflows(conn: Connection, org: uuid.UUID, *, status: str | None, category: str,
                         templates_only: bool, after: list | None, limit: int) -> list[Workflow]:
    w = Where("organization_id = :org", "deleted_at IS NULL", org=org)
    if status:
        w.add("status = :status", status=status)
    if category:
        w.add("category = :category", category=category)
    if templates_only:
        w.add("is_template")
    if after:
        w.add("(created_at, id) < (:a_t, :a_id)", a_t=after[0], a_id=after[1])
    rows = (await conn.execute(
        text(f"SELECT {_WF_COLUMNS} FROM crm.workflows WHERE {w} ORDER BY created_at DESC, id DESC LIMIT :limit"),
        {**w.params, "limit": limit})).all()
    return [_workflow(r) for r in rows]


async def update_workflow(conn: Connection, org: uuid.UUID, wid: uuid.UUID, values: dict[str, Any],
                          trigger_events: list[str], new_definition_version: int) -> None:
    await conn.execute(
        text("UPDATE crm.workflows SET name = :name, description = :description, category = :category, "
             "definition = CAST(:definition AS jsonb), variables = CAST(:variables AS jsonb), "
             "trigger_events = :events, definition_version = :dv, version = version + 1, updated_at = now() "
             "WHERE organization_id = :org AND id = :id"),
        {"org": org, "id": wid, "name": values["name"], "description": values["description"] or None,
         "category": values["category"] or None, "definition": _j(values["definition"]),
         "variables": _j(values["variables"] or {}), "events": trigger_events, "dv": new_definition_version})


async def set_workflow_status(conn: Connection, org: uuid.UUID, wid: uuid.UUID, status: str) -> None:
    await conn.execute(
        text("UPDATE crm.workflows SET status = :s, version = version + 1, updated_at = now() "
             "WHERE organization_id = :org AND id = :id"), {"org": org, "id": wid, "s": status})


async def soft_delete_workflow(conn: Connection, org: uuid.UUID, wid: uuid.UUID) -> None:
    await conn.execute(
        text("UPDATE crm.workflows SET deleted_at = now(), version = version + 1, updated_at = now() "
             "WHERE organization_id = :org AND id = :id"), {"org": org, "id": wid})


async def active_for_event(conn: Connection, org: uuid.UUID, event_type: str) -> list[Workflow]:
    rows = (await conn.execute(
        text(f"SELECT {_WF_COLUMNS} FROM crm.workflows WHERE organization_id = :org AND deleted_at IS NULL "
             "AND status = 'active' AND trigger_events @> ARRAY[CAST(:t AS text)]"),
        {"org": org, "t": event_type})).all()
    return [_workflow(r) for r in rows]


async def get_version(conn: Connection, org: uuid.UUID, wid: uuid.UUID, version: int) -> tuple[dict, dict] | None:
    row = (await conn.execute(
        text("SELECT definition, variables FROM crm.workflow_versions "
             "WHERE organization_id = :org AND workflow_id = :wid AND definition_version = :v"),
        {"org": org, "wid": wid, "v": version})).first()
    return (_load(row[0]), _load(row[1])) if row else None


# -- executions ----------------------------------------------------------------------------------

_EX_COLUMNS = ("id, organization_id, workflow_id, workflow_version, trigger_event, trigger_key, trigger_data, "
               "context, status, progress, step_index, current_step, donor_id, log, error, attempts, wait_event, "
               "wait_match, next_run_at, started_at, ended_at, updated_at, created_at")


@dataclass(slots=True)
class Execution:
    id: uuid.UUID
    organization_id: uuid.UUID
    workflow_id: uuid.UUID
    workflow_version: int
    trigger_event: str
    trigger_key: str
    trigger_data: dict
    context: dict
    status: str
    progress: int
    step_index: int | None
    current_step: str | None
    donor_id: uuid.UUID | None
    log: list
    error: str | None
    attempts: int
    wait_event: str | None
    wait_match: list | None
    next_run_at: datetime | None
    started_at: datetime
    ended_at: datetime | None
    updated_at: datetime
    created_at: datetime | None = None


def _execution(row: Any) -> Execution:
    e = Execution(*row)
    e.trigger_data, e.context, e.log = _load(e.trigger_data), _load(e.context), _load(e.log)
    e.wait_match = _load(e.wait_match)
    return e


async def insert_execution(conn: Connection, org: uuid.UUID, e: Execution) -> bool:
    """False when the workflow already started for this trigger key."""
    result = await conn.execute(
        text("INSERT INTO crm.workflow_executions (id, organization_id, workflow_id, workflow_version, trigger_event, "
             "trigger_key, trigger_data, context, status, progress, step_index, current_step, donor_id, log, "
             "next_run_at, started_at) VALUES (:id, :org, :wid, :wv, :te, :tk, CAST(:td AS jsonb), "
             "CAST(:ctx AS jsonb), :status, 0, :si, :cs, :donor, CAST(:log AS jsonb), :next, :started) "
             "ON CONFLICT (workflow_id, trigger_key) DO NOTHING"),
        {"id": e.id, "org": org, "wid": e.workflow_id, "wv": e.workflow_version, "te": e.trigger_event,
         "tk": e.trigger_key, "td": _j(e.trigger_data), "ctx": _j(e.context), "status": e.status,
         "si": e.step_index, "cs": e.current_step, "donor": e.donor_id, "log": _j(e.log), "next": e.next_run_at,
         "started": e.started_at})
    return result.rowcount == 1


async def execution_id_by_key(conn: Connection, org: uuid.UUID, wid: uuid.UUID, key: str) -> uuid.UUID | None:
    return (await conn.execute(
        text("SELECT id FROM crm.workflow_executions WHERE organization_id = :org AND workflow_id = :wid "
             "AND trigger_key = :k"), {"org": org, "wid": wid, "k": key})).scalar()


async def get_execution(conn: Connection, org: uuid.UUID, eid: uuid.UUID, *, for_update: bool = False,
                        skip_locked: bool = False) -> Execution | None:
    lock = (" FOR UPDATE SKIP LOCKED" if skip_locked else " FOR UPDATE") if for_update else ""
    row = (await conn.execute(
        text(f"SELECT {_EX_COLUMNS} FROM crm.workflow_executions WHERE organization_id = :org AND id = :id{lock}"),
        {"org": org, "id": eid})).first()
    return _execution(row) if row else None


async def page_executions(conn: Connection, org: uuid.UUID, *, workflow_id: uuid.UUID | None,
                          donor_id: uuid.UUID | None, status: str | None, after: list | None,
                          limit: int) -> list[Execution]:
    w = Where("organization_id = :org", org=org)
    if workflow_id:
        w.add("workflow_id = :wid", wid=workflow_id)
    if donor_id:
        w.add("donor_id = :donor", donor=donor_id)
    if status:
        w.add("status = :status", status=status)
    if after:
        w.add("(created_at, id) < (:a_t, :a_id)", a_t=after[0], a_id=after[1])
    rows = (await conn.execute(
        text(f"SELECT {_EX_COLUMNS} FROM crm.workflow_executions WHERE {w} "
             "ORDER BY created_at DESC, id DESC LIMIT :limit"), {**w.params, "limit": limit})).all()
    return [_execution(r) for r in rows]


async def save_execution(conn: Connection, org: uuid.UUID, e: Execution) -> None:
    await conn.execute(
        text("UPDATE crm.workflow_executions SET context = CAST(:ctx AS jsonb), status = :status, "
             "progress = :progress, step_index = :si, current_step = :cs, log = CAST(:log AS jsonb), error = :error, "
             "attempts = :attempts, wait_event = :we, wait_match = CAST(:wm AS jsonb), next_run_at = :next, "
             "ended_at = :ended, updated_at = now() WHERE organization_id = :org AND id = :id"),
        {"org": org, "id": e.id, "ctx": _j(e.context), "status": e.status, "progress": e.progress,
         "si": e.step_index, "cs": e.current_step, "log": _j(e.log), "error": e.error, "attempts": e.attempts,
         "we": e.wait_event, "wm": _j(e.wait_match) if e.wait_match is not None else None, "next": e.next_run_at,
         "ended": e.ended_at})


async def waiting_for(conn: Connection, org: uuid.UUID, event_type: str) -> list[Execution]:
    """Executions of the tenant waiting for this event type, locked (others skipped)."""
    rows = (await conn.execute(
        text(f"SELECT {_EX_COLUMNS} FROM crm.workflow_executions WHERE organization_id = :org "
             "AND status = 'waiting' AND wait_event = :t FOR UPDATE SKIP LOCKED"),
        {"org": org, "t": event_type})).all()
    return [_execution(r) for r in rows]


# -- due actions ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Due:
    id: int
    tenant_id: uuid.UUID
    kind: str
    execution_id: uuid.UUID | None
    workflow_id: uuid.UUID
    due_at: datetime
    lease_until: datetime | None


_DUE_COLUMNS = "id, tenant_id, kind, execution_id, workflow_id, due_at, lease_until"


async def schedule_step(conn: Connection, tenant: uuid.UUID, eid: uuid.UUID, wid: uuid.UUID, due_at: datetime,
                        *, notify: bool = True) -> None:
    """The execution's next step is due at due_at (one due row per execution, any lease dropped)."""
    await conn.execute(
        text("INSERT INTO crm.workflow_due (tenant_id, kind, execution_id, workflow_id, due_at) "
             "VALUES (:t, 'step', :eid, :wid, :at) ON CONFLICT (execution_id) WHERE kind = 'step' "
             "DO UPDATE SET due_at = EXCLUDED.due_at, lease_until = NULL, updated_at = now()"),
        {"t": tenant, "eid": eid, "wid": wid, "at": due_at})
    if notify:
        await conn.execute(text(f"SELECT pg_notify('{DUE_CHANNEL}', '')"))


async def unschedule_step(conn: Connection, eid: uuid.UUID) -> None:
    await conn.execute(text("DELETE FROM crm.workflow_due WHERE kind = 'step' AND execution_id = :eid"), {"eid": eid})


async def schedule_workflow(conn: Connection, tenant: uuid.UUID, wid: uuid.UUID, due_at: datetime) -> None:
    await conn.execute(
        text("INSERT INTO crm.workflow_due (tenant_id, kind, workflow_id, due_at) VALUES (:t, 'schedule', :wid, :at) "
             "ON CONFLICT (workflow_id) WHERE kind = 'schedule' "
             "DO UPDATE SET due_at = EXCLUDED.due_at, lease_until = NULL, updated_at = now()"),
        {"t": tenant, "wid": wid, "at": due_at})


async def unschedule_workflow(conn: Connection, wid: uuid.UUID) -> None:
    await conn.execute(text("DELETE FROM crm.workflow_due WHERE kind = 'schedule' AND workflow_id = :wid"),
                       {"wid": wid})


async def claim(conn: Connection, now: datetime, lease_until: datetime, limit: int,
                paused: list[uuid.UUID] | None = None) -> list[Due]:
    """Every tenant's rows due by `now` and not leased, up to `limit`, leased until lease_until;
    the `paused` tenants' rows (suspended organizations) stay where they are, due."""
    rows = (await conn.execute(
        text(f"UPDATE crm.workflow_due SET lease_until = :lease, updated_at = now() WHERE id IN ("
             "SELECT id FROM crm.workflow_due WHERE due_at <= :now AND (lease_until IS NULL OR lease_until <= :now) "
             "AND tenant_id <> ALL(CAST(:paused AS uuid[])) "
             f"ORDER BY due_at LIMIT :limit FOR UPDATE SKIP LOCKED) RETURNING {_DUE_COLUMNS}"),
        {"now": now, "lease": lease_until, "limit": limit, "paused": list(paused or ())})).all()
    return [Due(*r) for r in rows]


async def take(conn: Connection, due: Due) -> Due | None:
    """The claimed row, locked for this transaction, if it is still ours (the lease we set)."""
    row = (await conn.execute(
        text(f"SELECT {_DUE_COLUMNS} FROM crm.workflow_due WHERE id = :id AND lease_until = :lease "
             "FOR UPDATE SKIP LOCKED"), {"id": due.id, "lease": due.lease_until})).first()
    return Due(*row) if row else None


async def release(conn: Connection, due_id: int, due_at: datetime) -> None:
    await conn.execute(text("UPDATE crm.workflow_due SET due_at = :at, lease_until = NULL, updated_at = now() "
                            "WHERE id = :id"), {"id": due_id, "at": due_at})


async def next_due(conn: Connection) -> datetime | None:
    return (await conn.execute(text("SELECT min(due_at) FROM crm.workflow_due"))).scalar()


# -- what conditions read ------------------------------------------------------------------------


async def donor_facts(conn: Connection, org: uuid.UUID, donor_id: uuid.UUID) -> dict | None:
    row = (await conn.execute(
        text("SELECT d.id, d.first_name, d.last_name, d.email, d.journey_stage, d.custom_fields, d.tags, "
             "COALESCE(sum(g.donation_count), 0), max(g.last_gift_date), min(g.first_gift_date), d.version "
             "FROM crm.donors d LEFT JOIN crm.donor_giving g ON g.organization_id = d.organization_id "
             "AND g.donor_id = d.id WHERE d.organization_id = :org AND d.id = :id AND d.deleted_at IS NULL "
             "GROUP BY d.id"), {"org": org, "id": donor_id})).first()
    if row is None:
        return None
    name = " ".join(p for p in (row[1], row[2]) if p)
    return {"id": str(row[0]), "first_name": row[1], "last_name": row[2], "name": name, "email": row[3] or "",
            "journey_stage": row[4] or "", "custom_fields": _load(row[5]) or {}, "tags": list(row[6] or []),
            "gift_count": int(row[7]), "last_gift_date": row[8].isoformat() if row[8] else "",
            "first_gift_date": row[9].isoformat() if row[9] else "", "version": row[10]}


async def donation_facts(conn: Connection, org: uuid.UUID, donation_id: uuid.UUID) -> dict | None:
    """A gift's date and whether it is its donor's first (no other gift of the donor recorded before it)."""
    row = (await conn.execute(
        text("SELECT d.id, d.date, NOT EXISTS (SELECT 1 FROM crm.donations o "
             "WHERE o.organization_id = d.organization_id AND o.donor_id = d.donor_id AND o.id <> d.id "
             "AND (o.created_at, o.id) < (d.created_at, d.id)) "
             "FROM crm.donations d WHERE d.organization_id = :org AND d.id = :id"),
        {"org": org, "id": donation_id})).first()
    if row is None:
        return None
    return {"id": str(row[0]), "date": row[1].isoformat(), "is_first_gift": bool(row[2])}


async def lybunt_donor_ids(conn: Connection, org: uuid.UUID, today: date) -> list[uuid.UUID]:
    """Live donors who gave last calendar year and not yet this one."""
    rows = (await conn.execute(
        text("SELECT d.id FROM crm.donors d WHERE d.organization_id = :org AND d.deleted_at IS NULL "
             "AND EXISTS (SELECT 1 FROM crm.donations g WHERE g.organization_id = d.organization_id "
             "AND g.donor_id = d.id AND g.date >= :last_start AND g.date < :this_start) "
             "AND NOT EXISTS (SELECT 1 FROM crm.donations g WHERE g.organization_id = d.organization_id "
             "AND g.donor_id = d.id AND g.date >= :this_start) ORDER BY d.id LIMIT 10000"),
        {"org": org, "last_start": date(today.year - 1, 1, 1), "this_start": date(today.year, 1, 1)})).all()
    return [r[0] for r in rows]


async def set_donor_custom_field(conn: Connection, org: uuid.UUID, donor_id: uuid.UUID, key: str, value: Any) -> bool:
    result = await conn.execute(
        text("UPDATE crm.donors SET custom_fields = jsonb_set(COALESCE(custom_fields, '{}'), "
             "ARRAY[CAST(:k AS text)], CAST(:v AS jsonb)), version = version + 1, updated_at = now() "
             "WHERE organization_id = :org AND id = :id AND deleted_at IS NULL"),
        {"org": org, "id": donor_id, "k": key, "v": _j(value)})
    return result.rowcount == 1
