"""comms.settings: an organization's sending settings and its send-rate bucket."""

from __future__ import annotations

import uuid
from typing import Any

from chassis import sql
from chassis.db import Connection

COLUMNS = ("organization_id, from_name, from_address, reply_to, signature, dkim_domain, dkim_selector, "
           "dkim_key_sealed, thank_you_enabled, thank_you_template, thank_you_first_gift_only, "
           "thank_you_delay_seconds, send_rate_per_minute, double_opt_in, version, updated_at")
_QUALIFIED = ", ".join(f"comms.settings.{c}" for c in COLUMNS.split(", "))
UPDATABLE = ("from_name", "from_address", "reply_to", "signature", "dkim_domain", "dkim_selector",
             "dkim_key_sealed", "thank_you_enabled", "thank_you_template", "thank_you_first_gift_only",
             "thank_you_delay_seconds", "send_rate_per_minute", "double_opt_in")


async def get(conn: Connection, org: uuid.UUID, *, for_update: bool = False) -> dict[str, Any]:
    """The organization's settings (the defaults' row is made on first read)."""
    select = f"SELECT {COLUMNS} FROM comms.settings WHERE organization_id = :org{' FOR UPDATE' if for_update else ''}"
    row = await sql.first(conn, select, {"org": org})
    if row is None:
        await conn.execute("INSERT INTO comms.settings (organization_id) VALUES (:org) ON CONFLICT DO NOTHING",
                           {"org": org})
        row = await sql.first(conn, select, {"org": org})
    return row


async def update(conn: Connection, org: uuid.UUID, values: dict[str, Any]) -> dict[str, Any]:
    return await sql.first(
        conn, f"UPDATE comms.settings SET {sql.assignments(values)}, version = version + 1, updated_at = now() "
              f"WHERE organization_id = :org RETURNING {COLUMNS}", {**values, "org": org})


async def take_send_tokens(conn: Connection, org: uuid.UUID, wanted: int) -> tuple[int, dict[str, Any] | None]:
    """Up to `wanted` sends from the organization's token bucket at once (the sender's batch): how
    many it gave, and the settings (None when the organization has no row)."""
    row = await sql.first(conn, (
        "WITH b AS (SELECT LEAST(send_rate_per_minute::float8, "
        "        CASE WHEN rate_at IS NULL THEN send_rate_per_minute::float8 "
        "             ELSE rate_tokens + send_rate_per_minute * EXTRACT(EPOCH FROM now() - rate_at) / 60.0 END)"
        "      AS tokens FROM comms.settings WHERE organization_id = :org FOR UPDATE), "
        "g AS (SELECT tokens, LEAST(:wanted, GREATEST(floor(tokens), 0))::int AS granted FROM b) "
        "UPDATE comms.settings SET rate_tokens = g.tokens - g.granted, rate_at = now() FROM g "
        f"WHERE organization_id = :org RETURNING g.granted, {_QUALIFIED}"), {"org": org, "wanted": wanted})
    if row is None:
        return 0, None
    granted = row.pop("granted")
    return granted, row
