"""Project use cases: create, get, list, update, delete."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime

from chassis.db import Database
from chassis.errors import Violations
from chassis.resource import Keyset, check_request_id, current, parse_id, read_one, update_request
from services.crm.domain import projects as rules
from services.crm.domain.projects import ProjectFields
from services.crm.store import projects as store
from services.crm.store.projects import Project

_AUDITED = ("name", "description", "currency", "target_amount", "start_date", "end_date", "status", "settings")


def _audited(row: Project) -> dict:
    return {k: getattr(row, k) for k in _AUDITED}


async def create_project(db: Database, org: uuid.UUID, fields: ProjectFields, request_id: str) -> Project:
    v = Violations()
    check_request_id(request_id, v)
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


async def get_project(db: Database, org: uuid.UUID, project_id: str) -> Project:
    return await read_one(db, org, project_id, "project", store.get)


async def list_projects(db: Database, org: uuid.UUID, status: str | None, page_size: int,
                        page_token: str) -> tuple[list[Project], str]:
    page = Keyset.of(page_size, page_token, ("projects", status or ""), (datetime.fromisoformat, uuid.UUID))
    async with db.unit_of_work(org) as uow:
        rows = await store.page(uow.conn, org, status=status, after=page.after, limit=page.limit)
    return page.cut(rows, lambda r: (r.created_at, r.id))


async def update_project(db: Database, org: uuid.UUID, project_id: str, etag: str, patch: ProjectFields,
                         mask: list[str]) -> Project:
    pid, attrs = update_request(project_id, "project.id", mask, rules.PATH_TO_ATTR)
    v = Violations()
    async with db.unit_of_work(org) as uow:
        row = current(await store.get_for_update(uow.conn, org, pid), "project", project_id, etag, "project.etag")
        merged = replace(_fields_of(row), problems=patch.problems, **{a: getattr(patch, a) for a in attrs})
        if "target_amount" in attrs:
            merged.target_currency = patch.target_currency if patch.target_amount is not None else row.currency
        clean = rules.normalize(merged, "project", v, attrs=attrs)
        v.raise_if_any()
        rules.check_status_change(row.status, clean.status, project_id)
        await store.update(uow.conn, org, pid, clean.as_dict())
        updated = await store.get(uow.conn, org, pid)
        uow.audit_change("crm.project.update", "project", str(pid), _audited(row), _audited(updated))
        return updated


async def delete_project(db: Database, org: uuid.UUID, project_id: str, etag: str) -> Project:
    pid = parse_id(project_id, "id")
    async with db.unit_of_work(org) as uow:
        row = current(await store.get_for_update(uow.conn, org, pid), "project", project_id, etag, "etag")
        await store.soft_delete(uow.conn, org, pid)
        uow.audit("crm.project.delete", "project", str(pid), before=_audited(row))
        return await store.get(uow.conn, org, pid, include_deleted=True)


def _fields_of(row: dict) -> ProjectFields:
    return ProjectFields(
        name=row.name, description=row.description, currency=row.currency,
        target_amount=row.target_amount, target_currency=row.currency, start_date=row.start_date,
        end_date=row.end_date, status=row.status, settings=row.settings or {},
    )
