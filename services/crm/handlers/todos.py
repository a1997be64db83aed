"""Todo use cases: create, get, list, update, start/complete/cancel, delete."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date, datetime

from chassis import context
from chassis.db import Database, UnitOfWork
from chassis.errors import Violations
from chassis.resource import Keyset, check_request_id, current, parse_id, parse_optional_id, read_one, update_request
from services.crm.domain import todos as rules
from services.crm.domain.todos import TodoFields
from services.crm.store import members as members_store
from services.crm.store import todos as store
from services.crm.store.todos import Todo

_AUDITED = ("title", "description", "due_date", "priority", "status", "donor_id", "project_id", "assigned_to",
            "is_ai_generated", "ai_reasoning", "ai_confidence", "completed_at", "completed_by")


def _audited(row: Todo) -> dict:
    return {k: getattr(row, k) for k in _AUDITED}


def _self_assigner() -> str | None:
    """The calling user, who may always assign a todo to themself: their own membership event
    may not have reached crm yet (a new owner's first call). Not a service account."""
    ctx = context.current_or_none()
    principal = ctx.principal if ctx else None
    return principal.subject if principal is not None and principal.kind == "user" else None


def _caller_id(caller: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(caller)
    except ValueError:
        return None


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


async def create_todo(db: Database, org: uuid.UUID, caller: str, fields: TodoFields, status: str | None,
                      request_id: str) -> Todo:
    v = Violations()
    check_request_id(request_id, v)
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


async def get_todo(db: Database, org: uuid.UUID, todo_id: str) -> Todo:
    return await read_one(db, org, todo_id, "todo", store.get)


async def list_todos(db: Database, org: uuid.UUID, *, assignee_id: str, donor_id: str, project_id: str,
                     status: str | None, due_before: date | None, due_after: date | None, page_size: int,
                     page_token: str) -> tuple[list[Todo], str]:
    v = Violations()
    filters = {
        "assigned_to": parse_optional_id(assignee_id, "assignee_id", v),
        "donor_id": parse_optional_id(donor_id, "donor_id", v),
        "project_id": parse_optional_id(project_id, "project_id", v),
        "status": status, "due_before": due_before, "due_after": due_after,
    }
    v.raise_if_any()
    page = Keyset.of(page_size, page_token, ("todos", *(str(filters[k] or "") for k in sorted(filters))),
                     (date.fromisoformat, datetime.fromisoformat, uuid.UUID))
    async with db.unit_of_work(org) as uow:
        rows = await store.page(uow.conn, org, filters=filters, after=page.after, limit=page.limit)
    return page.cut(rows, lambda r: (r.due_key, r.created_at, r.id))


async def update_todo(db: Database, org: uuid.UUID, todo_id: str, etag: str, patch: TodoFields,
                      mask: list[str]) -> Todo:
    tid, attrs = update_request(todo_id, "todo.id", mask, rules.PATH_TO_ATTR)
    v = Violations()
    async with db.unit_of_work(org) as uow:
        row = current(await store.get(uow.conn, org, tid, for_update=True), "todo", todo_id, etag, "todo.etag")
        merged = replace(_fields_of(row), problems=patch.problems, **{a: getattr(patch, a) for a in attrs})
        clean = rules.normalize(merged, "todo", v, attrs=attrs)
        v.raise_if_any()
        await _check_links(uow.conn, org, clean, v, attrs=attrs,
                           current_assignee=str(row.assigned_to) if row.assigned_to else None)
        await store.update(uow.conn, org, tid, clean.as_dict())
        updated = await store.get(uow.conn, org, tid)
        uow.audit_change("crm.todo.update", "todo", str(tid), _audited(row), _audited(updated))
        return updated


async def move_todo(db: Database, org: uuid.UUID, caller: str, verb: str, todo_id: str, etag: str) -> Todo:
    """StartTodo, CompleteTodo, CancelTodo: completing records the caller and the time."""
    tid = parse_id(todo_id, "id")
    async with db.unit_of_work(org) as uow:
        row = await _locked(uow, org, tid, todo_id, etag)
        to = rules.move(verb, row.status, todo_id)
        await store.set_status(uow.conn, org, tid, to, _caller_id(caller))
        updated = await store.get(uow.conn, org, tid)
        uow.audit(f"crm.todo.{verb}", "todo", str(tid),
                  before={"status": row.status},
                  after={k: getattr(updated, k) for k in ("status", "completed_at", "completed_by")})
        return updated


async def delete_todo(db: Database, org: uuid.UUID, todo_id: str, etag: str) -> None:
    tid = parse_id(todo_id, "id")
    async with db.unit_of_work(org) as uow:
        row = await _locked(uow, org, tid, todo_id, etag)
        await store.delete(uow.conn, org, tid)
        uow.audit("crm.todo.delete", "todo", str(tid), before=_audited(row))


async def _locked(uow: UnitOfWork, org: uuid.UUID, tid: uuid.UUID, todo_id: str, etag: str) -> Todo:
    return current(await store.get(uow.conn, org, tid, for_update=True), "todo", todo_id, etag, "etag")


def _fields_of(row: dict) -> TodoFields:
    return TodoFields(
        title=row.title, description=row.description, due_date=row.due_date, priority=row.priority,
        donor_id=str(row.donor_id or ""), project_id=str(row.project_id or ""),
        assigned_to=str(row.assigned_to or ""),
    )


async def record_member(uow: UnitOfWork, organization_id: str, user_id: str, *, active: bool,
                        event_time: datetime) -> bool:
    """Keep crm.members (who may be assigned todos) from one of identity's membership events of
    uow's tenant; an event older than the one that last set the member changes nothing."""
    if uuid.UUID(organization_id) != uow.tenant_id:
        raise ValueError(f"the event's organization {organization_id} is not its tenant {uow.tenant_id}")
    return await members_store.record(uow.conn, uow.tenant_id, uuid.UUID(user_id), active=active,
                                      event_time=event_time)
