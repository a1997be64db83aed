"""identity's SQL for login throttling (identity.login_throttle, a global table)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


async def locked_keys(conn: AsyncConnection, keys: list[str]) -> set[str]:
    """Which of the keys are locked now."""
    rows = (await conn.execute(
        text("SELECT key FROM identity.login_throttle WHERE key = ANY(:keys) AND locked_until > now()"),
        {"keys": keys},
    )).scalars().all()
    return set(rows)


async def count_failure(conn: AsyncConnection, key: str, window: timedelta) -> int:
    """Counts one failure atomically (the count restarts after `window` without one); returns it."""
    stale = "t.last_failure_at IS NULL OR t.last_failure_at < now() - CAST(:window AS interval)"
    return (await conn.execute(
        text("INSERT INTO identity.login_throttle AS t (key, failures, last_failure_at) VALUES (:k, 1, now()) "
             "ON CONFLICT (key) DO UPDATE SET "
             f"failures = CASE WHEN {stale} THEN 1 ELSE t.failures + 1 END, "
             f"locked_until = CASE WHEN {stale} THEN NULL ELSE t.locked_until END, "
             "last_failure_at = now(), updated_at = now() "
             "RETURNING failures"),
        {"k": key, "window": window},
    )).scalar()


async def lock(conn: AsyncConnection, key: str, duration: timedelta) -> None:
    """Locks the key for `duration` from now (never shortening a longer lock)."""
    await conn.execute(
        text("UPDATE identity.login_throttle "
             "SET locked_until = GREATEST(locked_until, now() + CAST(:d AS interval)), updated_at = now() "
             "WHERE key = :k"),
        {"k": key, "d": duration},
    )


async def clear(conn: AsyncConnection, key: str) -> None:
    await conn.execute(text("DELETE FROM identity.login_throttle WHERE key = :k"), {"k": key})


async def prune(conn: AsyncConnection, window: timedelta) -> int:
    """Forgets keys with no failure within the window and no lock (the table does not grow without end)."""
    return (await conn.execute(
        text("DELETE FROM identity.login_throttle WHERE last_failure_at < now() - CAST(:window AS interval) "
             "AND (locked_until IS NULL OR locked_until < now())"),
        {"window": window},
    )).rowcount
