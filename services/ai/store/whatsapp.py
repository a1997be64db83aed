"""ai.whatsapp_allowlist (the staff numbers the assistant answers) and ai.whatsapp_queries."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chassis.db import Connection
from chassis.sql import Where, by_name, every, first

ENTRY_COLUMNS = "id, organization_id, phone, user_id, created_at"
QUERY_COLUMNS = ("id, organization_id, message_id, from_phone, user_id, status, query_text, query_type, "
                 "response_text, tools, model, created_at")


@dataclass
class Entry:
    id: uuid.UUID
    organization_id: uuid.UUID
    phone: str
    user_id: uuid.UUID
    created_at: datetime


@dataclass
class Query:
    id: uuid.UUID
    organization_id: uuid.UUID
    message_id: str
    from_phone: str
    user_id: uuid.UUID | None
    status: str
    query_text: str
    query_type: str
    response_text: str
    tools: list[str]
    model: str
    created_at: datetime


async def add_entry(conn: Connection, org: uuid.UUID, phone: str, user_id: uuid.UUID,
                    by: uuid.UUID | None) -> Entry | None:
    """The new entry; None when the number is on the organization's allowlist already."""
    return await first(conn, f"INSERT INTO ai.whatsapp_allowlist (id, organization_id, phone, user_id, created_by) "
                             f"VALUES (:id, :org, :phone, :user, :by) ON CONFLICT (organization_id, phone) DO NOTHING "
                             f"RETURNING {ENTRY_COLUMNS}",
                       {"id": uuid.uuid4(), "org": org, "phone": phone, "user": user_id, "by": by}, by_name(Entry))


async def entries(conn: Connection, org: uuid.UUID) -> list[Entry]:
    return await every(conn, f"SELECT {ENTRY_COLUMNS} FROM ai.whatsapp_allowlist WHERE organization_id = :org "
                             "ORDER BY created_at, id", {"org": org}, by_name(Entry))


async def remove_entry(conn: Connection, org: uuid.UUID, entry_id: uuid.UUID) -> Entry | None:
    return await first(conn, f"DELETE FROM ai.whatsapp_allowlist WHERE organization_id = :org AND id = :id "
                             f"RETURNING {ENTRY_COLUMNS}", {"org": org, "id": entry_id}, by_name(Entry))


async def entry_for(conn: Connection, org: uuid.UUID, phone: str) -> Entry | None:
    return await first(conn, f"SELECT {ENTRY_COLUMNS} FROM ai.whatsapp_allowlist WHERE organization_id = :org "
                             "AND phone = :phone", {"org": org, "phone": phone}, by_name(Entry))


async def query_for(conn: Connection, org: uuid.UUID, message_id: str) -> Query | None:
    return await first(conn, f"SELECT {QUERY_COLUMNS} FROM ai.whatsapp_queries WHERE organization_id = :org "
                             "AND message_id = :m", {"org": org, "m": message_id}, by_name(Query))


async def add_query(conn: Connection, org: uuid.UUID, **values: Any) -> uuid.UUID | None:
    """The new exchange's id; None when this inbound message has one already (a redelivery)."""
    row = await first(conn, "INSERT INTO ai.whatsapp_queries (id, organization_id, message_id, from_phone, staff_id, "
                            "user_id, status, query_text, query_type, response_text, tools, model, "
                            "execution_time_ms, token_usage) VALUES (:id, :org, :message_id, :from_phone, :staff_id, "
                            ":user_id, :status, :query_text, :query_type, :response_text, CAST(:tools AS text[]), "
                            ":model, :execution_time_ms, :token_usage) "
                            "ON CONFLICT (organization_id, message_id) DO NOTHING RETURNING id",
                      {"id": uuid.uuid4(), "org": org, "staff_id": None, "user_id": None, "query_type": "",
                       "response_text": "", "tools": [], "model": "", "execution_time_ms": 0, "token_usage": 0,
                       **values})
    return row["id"] if row else None


async def page_queries(conn: Connection, org: uuid.UUID, status: str | None, after: list[Any] | None,
                       limit: int) -> list[Query]:
    """Newest first."""
    where = Where("organization_id = :org", org=org, limit=limit)
    where.filter("status = :status", status=status)
    where.keyset("(created_at, id) <", after)
    return await every(conn, f"SELECT {QUERY_COLUMNS} FROM ai.whatsapp_queries WHERE {where} "
                             "ORDER BY created_at DESC, id DESC LIMIT :limit", where.params, by_name(Query))
