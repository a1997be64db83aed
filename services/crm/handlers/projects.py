"""Project use cases: create, get, list, update, delete."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime

from chassis import paging
from chassis.db import Database
from chassis.errors import Aborted, InvalidArgument, NotFound, Violations
from chassis.ids import parse_id
from services.crm.domain import projects as rules
from services.crm.store import projects as store

_AUDITED = ("name", "description", "currency", "target_amount", "start_date", "end_date", "status", "settings")


def _audited(row: dict) -> dict:
    return {k: row.get(k) for k in _AUDITED}




def _check_etag(row: dict, etag: str, field: str) -> None:
    if etag and etag != rules.etag(row["version"]):
        raise Aborted(f"the project changed since it was read ({field} is stale); read it again",
                      reason="ETAG_MISMATCH")


async def create_project(db: Database, org: uuid.UUID, fields: rules.ProjectFields, request_id: str) -> dict:
    v = Violations()
    if len(request_id) > 100:
        v.add("request_id", "must be at most 100 characters")
    status = rules.check_creatable_status(fields.status, "project.status", v)
    clean = rules.normalize(replace(fields, status=status), "project", v)
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        project_id = uuid.uuid4()
        if not await store.insert(uow.conn, org, project_id, clean.as_dict(), request_id or None):
            # AIP-155: the request was served before; return that project
            project_id = await store.id_by_request_id(uow.conn, org, request_id)
            return await store.get(uow.conn, org, project_id, include_deleted=True)
        row = await store.get(uow.conn, org, project_id)
        uow.audit("crm.project.create", "project", str(project_id), after=_audited(row))
        return row


async def get_project(db: Database, org: uuid.UUID, project_id: str) -> dict:
    pid = parse_id(project_id, "id")
    async with db.unit_of_work(org) as uow:
        row = await store.get(uow.conn, org, pid)
    if row is None:
        raise NotFound(f"project {project_id} not found")
    return row


async def list_projects(db: Database, org: uuid.UUID, status: str | None, page_size: int,
                        page_token: str) -> tuple[list[dict], str]:
    size = paging.page_size(page_size)
    fp = paging.fingerprint("projects", status or "")
    after = paging.decode(page_token, fp)
    if after is not None:
        try:
            after = [datetime.fromisoformat(after[0]), uuid.UUID(after[1])]
        except (ValueError, TypeError, IndexError):
            raise InvalidArgument.field("page_token", "is not a page token this method issued") from None
    async with db.unit_of_work(org) as uow:
        rows = await store.page(uow.conn, org, status=status, after=after, limit=size + 1)
    token = ""
    if len(rows) > size:
        rows = rows[:size]
        token = paging.encode([rows[-1]["created_at"].isoformat(), str(rows[-1]["id"])], fp)
    return rows, token


async def update_project(db: Database, org: uuid.UUID, project_id: str, etag: str, patch: rules.ProjectFields,
                         mask: list[str]) -> dict:
    pid = parse_id(project_id, "project.id")
    v = Violations()
    attrs = rules.expand_mask(mask, "update_mask", v)
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        row = await store.get_for_update(uow.conn, org, pid)
        if row is None:
            raise NotFound(f"project {project_id} not found")
        _check_etag(row, etag, "project.etag")
        current = _fields_of(row)
        merged = replace(current, problems=patch.problems, **{a: getattr(patch, a) for a in attrs})
        if "target_amount" in attrs:
            merged.target_currency = patch.target_currency if patch.target_amount is not None else row["currency"]
        clean = rules.normalize(merged, "project", v, attrs=attrs)
        v.raise_if_any()
        rules.check_status_change(row["status"], clean.status, project_id)
        await store.update(uow.conn, org, pid, clean.as_dict())
        updated = await store.get(uow.conn, org, pid)
        uow.audit_change("crm.project.update", "project", str(pid), _audited(row), _audited(updated))
        return updated


async def delete_project(db: Database, org: uuid.UUID, project_id: str, etag: str) -> dict:
    pid = parse_id(project_id, "id")
    async with db.unit_of_work(org) as uow:
        row = await store.get_for_update(uow.conn, org, pid)
        if row is None:
            raise NotFound(f"project {project_id} not found")
        _check_etag(row, etag, "etag")
        await store.soft_delete(uow.conn, org, pid)
        uow.audit("crm.project.delete", "project", str(pid), before=_audited(row))
        return await store.get(uow.conn, org, pid, include_deleted=True)


def _fields_of(row: dict) -> rules.ProjectFields:
    return rules.ProjectFields(
        name=row["name"], description=row["description"], currency=row["currency"],
        target_amount=row["target_amount"], target_currency=row["currency"], start_date=row["start_date"],
        end_date=row["end_date"], status=row["status"], settings=row["settings"] or {},
    )
