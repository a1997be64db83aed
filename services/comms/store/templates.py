"""comms.templates and their versions."""

from __future__ import annotations

import uuid
from typing import Any

from chassis import sql
from chassis.db import Connection
from chassis.sql import Where

_SELECT = ("SELECT t.id, t.organization_id, t.name, t.channel, t.category, v.version AS template_version, "
           "t.current_version, v.subject, v.body_text, v.body_html, v.variables, t.version, t.created_at, "
           "v.created_at AS updated_at FROM comms.templates t JOIN comms.template_versions v "
           "ON v.organization_id = t.organization_id AND v.template_id = t.id")


async def insert(conn: Connection, org: uuid.UUID, template_id: uuid.UUID, values: dict[str, Any],
                 request_id: str | None, created_by: uuid.UUID | None) -> bool:
    """False when the request id was used already; raises IntegrityError on a taken name."""
    result = await conn.execute(
        "INSERT INTO comms.templates (id, organization_id, name, channel, category, create_request_id) "
        "VALUES (:id, :org, :name, :channel, :category, :rid) "
        "ON CONFLICT (organization_id, create_request_id) WHERE create_request_id IS NOT NULL DO NOTHING",
        {"id": template_id, "org": org, "name": values["name"], "channel": values["channel"],
         "category": values["category"], "rid": request_id})
    if result.rowcount != 1:
        return False
    await add_version(conn, org, template_id, 1, values, created_by)
    return True


async def add_version(conn: Connection, org: uuid.UUID, template_id: uuid.UUID, version: int,
                      values: dict[str, Any], created_by: uuid.UUID | None) -> None:
    await conn.execute(
        "INSERT INTO comms.template_versions (organization_id, template_id, version, subject, body_text, body_html, "
        "variables, created_by) VALUES (:org, :id, :v, :subject, :body_text, :body_html, :variables, :by)",
        {"org": org, "id": template_id, "v": version, "subject": values["subject"], "body_text": values["body_text"],
         "body_html": values["body_html"], "variables": list(values["variables"]), "by": created_by})


async def id_by_request_id(conn: Connection, org: uuid.UUID, request_id: str) -> uuid.UUID | None:
    return await sql.id_by_request_id(conn, "comms.templates", org, request_id)


async def get(conn: Connection, org: uuid.UUID, template_id: uuid.UUID, version: int = 0,
              *, for_update: bool = False) -> dict[str, Any] | None:
    v = ":version" if version else "t.current_version"
    return await sql.first(
        conn, f"{_SELECT} AND v.version = {v} WHERE t.organization_id = :org AND t.id = :id AND t.deleted_at IS NULL"
              f"{' FOR UPDATE OF t' if for_update else ''}",
        {"org": org, "id": template_id, **({"version": version} if version else {})})


async def by_name(conn: Connection, org: uuid.UUID, name: str) -> dict[str, Any] | None:
    return await sql.first(conn, f"{_SELECT} AND v.version = t.current_version WHERE t.organization_id = :org "
                                 "AND t.name = :name AND t.deleted_at IS NULL", {"org": org, "name": name})


async def page(conn: Connection, org: uuid.UUID, after: list[Any] | None, limit: int) -> list[dict[str, Any]]:
    where = Where("t.organization_id = :org", "t.deleted_at IS NULL", org=org, limit=limit)
    where.keyset("(t.name) >", after)
    return await sql.every(conn, f"{_SELECT} AND v.version = t.current_version WHERE {where} "
                                 "ORDER BY t.name LIMIT :limit", where.params)


async def set_current(conn: Connection, org: uuid.UUID, template_id: uuid.UUID, version: int,
                      category: str) -> None:
    await conn.execute("UPDATE comms.templates SET current_version = :v, category = :c, version = version + 1, "
                       "updated_at = now() WHERE organization_id = :org AND id = :id",
                       {"v": version, "c": category, "org": org, "id": template_id})


async def categories(conn: Connection, org: uuid.UUID) -> list[str]:
    """The categories of the organization's live email templates."""
    return [r[0] for r in (await conn.execute(
        "SELECT DISTINCT category FROM comms.templates WHERE organization_id = :org AND channel = 'email' "
        "AND deleted_at IS NULL ORDER BY category LIMIT 200", {"org": org})).all()]
