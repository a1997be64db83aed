"""Todo use cases: create, get, list, update, start/complete/cancel, delete."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date, datetime

from chassis import context, paging
from chassis.db import Database, UnitOfWork
from chassis.errors import Aborted, InvalidArgument, NotFound, Violations
from chassis.ids import parse_id
from services.crm.domain import todos as rules
from services.crm.store import members as members_store
from services.crm.store import todos as store

_AUDITED = ("title", "description", "due_date", "priority", "status", "donor_id", "project_id", "assigned_to",
            "is_ai_generated", "ai_reasoning", "ai_confidence", "completed_at", "completed_by")


def _audited(row: dict) -> dict:
    return {k: row.get(k) for k in _AUDITED}


def _self_assigner() -> str | None:
    """The calling user, who may always assign a todo to themself: their own membership event
    may not have reached crm yet (a new owner's first call). Not a service account."""
    ctx = context.current_or_none()
    principal = ctx.principal if ctx else None
    return principal.subject if principal is not None and principal.kind == "user" else None


def _optional_id(value: str, field: str, v: Violations) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        v.add(field, "is not a valid id")
        return None


def _caller_id(caller: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(caller)
    except ValueError:
        return None


def _check_etag(row: dict, etag: str, field: str) -> None:
    if etag and etag != rules.etag(row["version"]):
        raise Aborted(f"the todo changed since it was read ({field} is stale); read it again", reason="ETAG_MISMATCH")


async def _check_links(conn, org: uuid.UUID, clean: rules.CleanTodo, v: Violations, *, attrs: list[str],
                       current_assignee: str | None = None) -> None:
    """donor_id and project_id must name live rows of this organization; a new assignee must
    be an active member of it (or the caller)."""
    if "donor_id" in attrs and clean.donor_id and not await store.donor_is_live(conn, org, uuid.UUID(clean.donor_id)):
        v.add("todo.donor_id", "no such donor")
    if ("project_id" in attrs and clean.project_id
            and not await store.project_is_live(conn, org, uuid.UUID(clean.project_id))):
        v.add("todo.project_id", "no such project")
    if "assigned_to" in attrs:
        assignee = rules.assignee_to_check(clean.assigned_to, current_assignee, _self_assigner())
        if assignee is not None and not await members_store.is_active(conn, org, assignee):
            v.add("todo.assignee_id", rules.NOT_AN_ACTIVE_MEMBER)
    v.raise_if_any()


async def create_todo(db: Database, org: uuid.UUID, caller: str, fields: rules.TodoFields, status: str | None,
                      request_id: str) -> dict:
    v = Violations()
    if len(request_id) > rules.MAX_REQUEST_ID:
        v.add("request_id", f"must be at most {rules.MAX_REQUEST_ID} characters")
    rules.check_creatable_status(status, "todo.status", v)
    clean = rules.normalize(fields, "todo", v, creating=True)
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        if request_id:
            earlier = await store.id_by_request_id(uow.conn, org, request_id)
            if earlier is not None:
                return await store.get(uow.conn, org, earlier)
        await _check_links(uow.conn, org, clean, v, attrs=["donor_id", "project_id", "assigned_to"])
        todo_id = uuid.uuid4()
        if not await store.insert(uow.conn, org, todo_id, clean.as_dict(), _caller_id(caller), request_id or None):
            # AIP-155: a concurrent request with this id won; return its todo
            todo_id = await store.id_by_request_id(uow.conn, org, request_id)
            return await store.get(uow.conn, org, todo_id)
        row = await store.get(uow.conn, org, todo_id)
        uow.audit("crm.todo.create", "todo", str(todo_id), after=_audited(row))
        return row


async def get_todo(db: Database, org: uuid.UUID, todo_id: str) -> dict:
    tid = parse_id(todo_id, "id")
    async with db.unit_of_work(org) as uow:
        row = await store.get(uow.conn, org, tid)
    if row is None:
        raise NotFound(f"todo {todo_id} not found")
    return row


async def list_todos(db: Database, org: uuid.UUID, *, assignee_id: str, donor_id: str, project_id: str,
                     status: str | None, due_before: date | None, due_after: date | None, page_size: int,
                     page_token: str) -> tuple[list[dict], str]:
    v = Violations()
    filters = {
        "assigned_to": _optional_id(assignee_id, "assignee_id", v),
        "donor_id": _optional_id(donor_id, "donor_id", v),
        "project_id": _optional_id(project_id, "project_id", v),
        "status": status, "due_before": due_before, "due_after": due_after,
    }
    v.raise_if_any()
    size = paging.page_size(page_size)
    fp = paging.fingerprint("todos", *(str(filters[k] or "") for k in sorted(filters)))
    after = paging.decode(page_token, fp)
    if after is not None:
        try:
            after = [date.fromisoformat(after[0]), datetime.fromisoformat(after[1]), uuid.UUID(after[2])]
        except (ValueError, TypeError, IndexError):
            raise InvalidArgument.field("page_token", "is not a page token this method issued") from None
    async with db.unit_of_work(org) as uow:
        rows = await store.page(uow.conn, org, filters=filters, after=after, limit=size + 1)
    token = ""
    if len(rows) > size:
        rows = rows[:size]
        last = rows[-1]
        token = paging.encode([last["due_key"].isoformat(), last["created_at"].isoformat(), str(last["id"])], fp)
    return rows, token


async def update_todo(db: Database, org: uuid.UUID, todo_id: str, etag: str, patch: rules.TodoFields,
                      mask: list[str]) -> dict:
    tid = parse_id(todo_id, "todo.id")
    v = Violations()
    attrs = rules.expand_mask(mask, "update_mask", v)
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        row = await store.get(uow.conn, org, tid, for_update=True)
        if row is None:
            raise NotFound(f"todo {todo_id} not found")
        _check_etag(row, etag, "todo.etag")
        merged = replace(_fields_of(row), problems=patch.problems, **{a: getattr(patch, a) for a in attrs})
        clean = rules.normalize(merged, "todo", v, attrs=attrs)
        v.raise_if_any()
        await _check_links(uow.conn, org, clean, v, attrs=attrs,
                           current_assignee=str(row["assigned_to"]) if row["assigned_to"] else None)
        await store.update(uow.conn, org, tid, clean.as_dict())
        updated = await store.get(uow.conn, org, tid)
        uow.audit_change("crm.todo.update", "todo", str(tid), _audited(row), _audited(updated))
        return updated


async def move_todo(db: Database, org: uuid.UUID, caller: str, verb: str, todo_id: str, etag: str) -> dict:
    """StartTodo, CompleteTodo, CancelTodo: completing records the caller and the time."""
    tid = parse_id(todo_id, "id")
    async with db.unit_of_work(org) as uow:
        row = await store.get(uow.conn, org, tid, for_update=True)
        if row is None:
            raise NotFound(f"todo {todo_id} not found")
        _check_etag(row, etag, "etag")
        to = rules.move(verb, row["status"], todo_id)
        await store.set_status(uow.conn, org, tid, to, _caller_id(caller))
        updated = await store.get(uow.conn, org, tid)
        uow.audit(f"crm.todo.{verb}", "todo", str(tid),
                  before={"status": row["status"]},
                  after={k: updated[k] for k in ("status", "completed_at", "completed_by")})
        return updated


async def delete_todo(db: Database, org: uuid.UUID, todo_id: str, etag: str) -> None:
    tid = parse_id(todo_id, "id")
    async with db.unit_of_work(org) as uow:
        row = await store.get(uow.conn, org, tid, for_update=True)
        if row is None:
            raise NotFound(f"todo {todo_id} not found")
        _check_etag(row, etag, "etag")
        await store.delete(uow.conn, org, tid)
        uow.audit("crm.todo.delete", "todo", str(tid), before=_audited(row))


def _fields_of(row: dict) -> rules.TodoFields:
    return rules.TodoFields(
        title=row["title"], description=row["description"], due_date=row["due_date"], priority=row["priority"],
        donor_id=str(row["donor_id"] or ""), project_id=str(row["project_id"] or ""),
        assigned_to=str(row["assigned_to"] or ""),
    )


async def record_member(uow: UnitOfWork, organization_id: str, user_id: str, *, active: bool,
                        event_time: datetime) -> bool:
    """Keep crm.members (who may be assigned todos) from one of identity's membership events of
    uow's tenant; an event older than the one that last set the member changes nothing."""
    if uuid.UUID(organization_id) != uow.tenant_id:
        raise ValueError(f"the event's organization {organization_id} is not its tenant {uow.tenant_id}")
    return await members_store.record(uow.conn, uow.tenant_id, uuid.UUID(user_id), active=active,
                                      event_time=event_time)
