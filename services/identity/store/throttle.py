"""identity's SQL for login throttling (identity.login_throttle, a global table)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from chassis.db import Connection


async def claim(conn: Connection, keys: list[str], window: timedelta) -> dict[str, tuple[int, bool]]:
    """Locks the keys' rows (created when missing) until the transaction ends, in key order, and
    returns each key's (failures within the window, locked now). Concurrent attempts on a key
    queue on its row: each one reads what the one before it wrote."""
    keys = sorted(set(keys))
    await conn.execute(
        text("INSERT INTO identity.login_throttle (key) SELECT unnest(CAST(:keys AS text[])) ON CONFLICT DO NOTHING"),
        {"keys": keys},
    )
    rows = (await conn.execute(
        text("SELECT key, CASE WHEN last_failure_at >= now() - CAST(:window AS interval) THEN failures ELSE 0 END, "
             "COALESCE(locked_until > now(), false) FROM identity.login_throttle "
             "WHERE key = ANY(:keys) ORDER BY key FOR UPDATE"),
        {"keys": keys, "window": window},
    )).all()
    return {key: (failures, locked) for key, failures, locked in rows}


async def set_failures(conn: Connection, key: str, failures: int, lock_for: timedelta | None) -> None:
    """Records the key's failure count (now its last failure) and, when given, locks it for
    `lock_for` from now (never shortening a longer lock). A count of 1 starts a new window and
    forgets an old lock."""
    await conn.execute(
        text("UPDATE identity.login_throttle SET failures = :n, last_failure_at = now(), updated_at = now(), "
             "locked_until = CASE WHEN CAST(:d AS interval) IS NOT NULL "
             "THEN GREATEST(CASE WHEN :n > 1 THEN locked_until END, now() + CAST(:d AS interval)) "
             "WHEN :n > 1 THEN locked_until END "
             "WHERE key = :k"),
        {"k": key, "n": failures, "d": lock_for},
    )


async def refund(conn: Connection, key: str, max_failures: int) -> None:
    """Takes back one failure counted before a password check that passed; no lock is left that
    the remaining count does not earn."""
    await conn.execute(
        text("UPDATE identity.login_throttle SET failures = GREATEST(failures - 1, 0), updated_at = now(), "
             "locked_until = CASE WHEN failures - 1 < :max THEN NULL ELSE locked_until END WHERE key = :k"),
        {"k": key, "max": max_failures},
    )


async def clear(conn: Connection, key: str) -> None:
    await conn.execute(text("DELETE FROM identity.login_throttle WHERE key = :k"), {"k": key})


async def prune(conn: Connection, window: timedelta) -> int:
    """Forgets keys with no failure within the window and no lock (the table does not grow without end)."""
    return (await conn.execute(
        text("DELETE FROM identity.login_throttle WHERE last_failure_at < now() - CAST(:window AS interval) "
             "AND (locked_until IS NULL OR locked_until < now())"),
        {"window": window},
    )).rowcount
