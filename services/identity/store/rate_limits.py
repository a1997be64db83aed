"""identity's SQL for request rate limits (identity.request_limits, a global table)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from chassis.db import Connection


async def count(conn: Connection, key: str, window: timedelta) -> tuple[int, float]:
    """Counts one request against the key in its current window (a new window starts when the
    last one has run out), atomically; returns the count and the seconds left in the window."""
    expired = "r.window_start <= now() - CAST(:w AS interval)"
    row = (await conn.execute(
        text("INSERT INTO identity.request_limits AS r (key, window_start, count) VALUES (:k, now(), 1) "
             "ON CONFLICT (key) DO UPDATE SET "
             f"count = CASE WHEN {expired} THEN 1 ELSE r.count + 1 END, "
             f"window_start = CASE WHEN {expired} THEN now() ELSE r.window_start END, updated_at = now() "
             "RETURNING count, extract(epoch FROM window_start + CAST(:w AS interval) - now())"),
        {"k": key, "w": window},
    )).one()
    return int(row[0]), float(row[1])


async def prune(conn: Connection, window: timedelta) -> int:
    return (await conn.execute(
        text("DELETE FROM identity.request_limits WHERE window_start < now() - CAST(:w AS interval)"),
        {"w": window},
    )).rowcount
