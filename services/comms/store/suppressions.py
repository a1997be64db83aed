"""comms.suppressions and comms.consent_changes."""

from __future__ import annotations

import uuid
from typing import Any

from chassis import sql
from chassis.db import Connection
from chassis.sql import Where
from services.comms.domain.consent import Word

COLUMNS = "id, organization_id, address, reason, note, created_at"


async def add(conn: Connection, org: uuid.UUID, address: str, reason: str, note: str = "") -> dict[str, Any]:
    """The suppression of the address (an existing one is kept as it is)."""
    await conn.execute(
        "INSERT INTO comms.suppressions (id, organization_id, address, reason, note) "
        "VALUES (:id, :org, :a, :r, :n) ON CONFLICT (organization_id, address) DO NOTHING",
        {"id": uuid.uuid4(), "org": org, "a": address, "r": reason, "n": note})
    return await sql.first(conn, f"SELECT {COLUMNS} FROM comms.suppressions WHERE organization_id = :org "
                                 "AND address = :a", {"org": org, "a": address})


async def find(conn: Connection, org: uuid.UUID, address: str) -> dict[str, Any] | None:
    return await sql.first(conn, f"SELECT {COLUMNS} FROM comms.suppressions WHERE organization_id = :org "
                                 "AND address = :a", {"org": org, "a": address})


async def page(conn: Connection, org: uuid.UUID, after: list[Any] | None, limit: int) -> list[dict[str, Any]]:
    where = Where("organization_id = :org", org=org, limit=limit).keyset("(created_at, id) <", after)
    return await sql.every(conn, f"SELECT {COLUMNS} FROM comms.suppressions WHERE {where} "
                                 "ORDER BY created_at DESC, id DESC LIMIT :limit", where.params)


async def delete(conn: Connection, org: uuid.UUID, suppression_id: uuid.UUID) -> dict[str, Any] | None:
    return await sql.first(conn, f"DELETE FROM comms.suppressions WHERE organization_id = :org AND id = :id "
                                 f"RETURNING {COLUMNS}", {"org": org, "id": suppression_id})


async def remove_address(conn: Connection, org: uuid.UUID, address: str) -> None:
    await conn.execute("DELETE FROM comms.suppressions WHERE organization_id = :org AND address = :a",
                       {"org": org, "a": address})


async def change_consent(conn: Connection, org: uuid.UUID, address: str, category: str, granted: bool,
                         source: str, message_id: uuid.UUID | None, *, pending: bool = False,
                         detail: str = "") -> None:
    await conn.execute(
        "INSERT INTO comms.consent_changes (organization_id, address, category, granted, source, message_id, "
        "pending, detail) VALUES (:org, :a, :c, :g, :s, :m, :p, :d)",
        {"org": org, "a": address, "c": category, "g": granted, "s": source, "m": message_id, "p": pending,
         "d": detail[:1000]})


async def standing(conn: Connection, org: uuid.UUID, address: str, category: str) -> tuple[str | None, Word | None]:
    """What a send to the address must respect, in one read: the reason it is suppressed (None:
    it is not) and its latest change on the category or on everything (category '*')."""
    row = (await conn.execute(
        "SELECT (SELECT reason FROM comms.suppressions WHERE organization_id = :org AND address = :a), "
        "w.granted, w.pending FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT granted, pending "
        "FROM comms.consent_changes WHERE organization_id = :org AND address = :a AND category IN (:c, '*') "
        "ORDER BY id DESC LIMIT 1) w ON true", {"org": org, "a": address, "c": category})).first()
    return row[0], (Word(row[1], row[2]) if row[1] is not None else None)


async def latest_words(conn: Connection, org: uuid.UUID, address: str) -> dict[str, tuple[int, Word]]:
    """Per category (and '*'), the latest change's id and word."""
    rows = (await conn.execute(
        "SELECT DISTINCT ON (category) category, id, granted, pending FROM comms.consent_changes "
        "WHERE organization_id = :org AND address = :a ORDER BY category, id DESC", {"org": org, "a": address})).all()
    return {r[0]: (r[1], Word(r[2], r[3])) for r in rows}


async def pending_for(conn: Connection, org: uuid.UUID, message_id: uuid.UUID) -> list[dict[str, Any]]:
    """The grants a confirmation message asked to confirm, still the latest word on their category."""
    return await sql.every(conn, (
        "SELECT p.address, p.category FROM comms.consent_changes p WHERE p.organization_id = :org "
        "AND p.message_id = :m AND p.pending AND NOT EXISTS (SELECT 1 FROM comms.consent_changes later "
        "WHERE later.organization_id = p.organization_id AND later.address = p.address "
        "AND later.category = p.category AND later.id > p.id) ORDER BY p.category"), {"org": org, "m": message_id})


async def consent_history(conn: Connection, org: uuid.UUID, address: str) -> list[dict[str, Any]]:
    return await sql.every(conn, "SELECT address, category, granted, pending, source, detail, created_at "
                                 "FROM comms.consent_changes WHERE organization_id = :org AND address = :a "
                                 "ORDER BY id DESC LIMIT 500", {"org": org, "a": address})
