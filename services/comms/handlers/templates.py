"""Templates: create, read, list, update (a new version), resolve by name, render a preview."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.exc import IntegrityError

from chassis.db import Connection, Database
from chassis.errors import AlreadyExists, InvalidArgument, NotFound, Violations
from chassis.resource import Keyset, check_etag, check_request_id, found, parse_id
from services.comms.domain import templates as rules
from services.comms.domain.templates import TemplateBody
from services.comms.store import templates as store

UPDATABLE = ("subject", "body_text", "body_html", "variables", "category")


def body_of(row: dict[str, Any]) -> TemplateBody:
    return TemplateBody(row["name"], row["channel"], row["category"], row["subject"], row["body_text"],
                        row["body_html"], list(row["variables"]), row["template_version"])


def _caller_uuid(caller: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(caller)
    except ValueError:
        return None


async def create_template(db: Database, org: uuid.UUID, caller: str, t: TemplateBody,
                          request_id: str) -> dict[str, Any]:
    v = Violations()
    check_request_id(request_id, v)
    rules.check_name(t.name, "template.name", v)
    rules.check_category(t.category, "template.category", v)
    rules.check_body(t, "template", v)
    v.raise_if_any()
    values = {"name": t.name, "channel": t.channel, "category": t.category, "subject": t.subject,
              "body_text": t.body_text, "body_html": t.body_html, "variables": t.variables}
    async with db.unit_of_work(org) as uow:
        if request_id:
            earlier = await store.id_by_request_id(uow.conn, org, request_id)
            if earlier is not None:
                return await store.get(uow.conn, org, earlier)
        tid = uuid.uuid4()
        try:
            async with uow.conn.begin_nested():
                inserted = await store.insert(uow.conn, org, tid, values, request_id or None, _caller_uuid(caller))
        except IntegrityError:
            raise AlreadyExists(f"a template named {t.name!r} exists", reason="TEMPLATE_NAME_TAKEN") from None
        if not inserted:
            tid = await store.id_by_request_id(uow.conn, org, request_id)
        return await store.get(uow.conn, org, tid)


async def get_template(db: Database, org: uuid.UUID, template_id: str, version: int) -> dict[str, Any]:
    tid = parse_id(template_id, "id")
    if version < 0:
        raise InvalidArgument.field("version", "must not be negative")
    async with db.unit_of_work(org) as uow:
        row = await store.get(uow.conn, org, tid, version)
    return found(row, "template", template_id)


async def list_templates(db: Database, org: uuid.UUID, page_size: int, page_token: str
                         ) -> tuple[list[dict[str, Any]], list[TemplateBody], str]:
    """The organization's templates (paged by name) and, on the first page, the system ones it
    has not overridden."""
    page = Keyset.of(page_size, page_token, ("templates",), (str,), maximum=500)
    async with db.unit_of_work(org) as uow:
        rows = await store.page(uow.conn, org, page.after, page.limit)
        own = {r["name"] for r in await store.page(uow.conn, org, None, 10_000)} if page.after is None else set()
    rows, token = page.cut(rows, lambda r: (r["name"],))
    system = [t for name, t in sorted(rules.SYSTEM.items()) if name not in own] if page.after is None else []
    return rows, system, token


async def update_template(db: Database, org: uuid.UUID, caller: str, template_id: str, given_etag: str,
                          t: TemplateBody, attrs: list[str]) -> dict[str, Any]:
    tid = parse_id(template_id, "template.id")
    async with db.unit_of_work(org) as uow:
        row = await store.get(uow.conn, org, tid, for_update=True)
        found(row, "template", template_id)
        check_etag(given_etag, row["version"], "template", "template.etag")
        merged = body_of(row)
        for a in attrs:
            setattr(merged, a, getattr(t, a))
        v = Violations()
        rules.check_category(merged.category, "template.category", v)
        rules.check_body(merged, "template", v)
        v.raise_if_any()
        new_version = row["current_version"] + 1
        await store.add_version(uow.conn, org, tid, new_version, {
            "subject": merged.subject, "body_text": merged.body_text, "body_html": merged.body_html,
            "variables": merged.variables}, _caller_uuid(caller))
        await store.set_current(uow.conn, org, tid, new_version, merged.category)
        return await store.get(uow.conn, org, tid)


async def resolve(conn: Connection, org: uuid.UUID, name: str, field: str = "template_name") -> TemplateBody:
    """The organization's template of that name, else the system one; NOT_FOUND otherwise."""
    row = await store.by_name(conn, org, name)
    if row is not None:
        return body_of(row)
    if name in rules.SYSTEM:
        return rules.SYSTEM[name]
    raise NotFound(f"template {name} not found")


def check_variables(t: TemplateBody, given: dict[str, Any], field: str, v: Violations) -> None:
    rules.check_variables(t.variables, given, field, v)
