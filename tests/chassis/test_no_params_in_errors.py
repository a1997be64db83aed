"""Errors that reach the logs carry no SQL parameters (issue 9, item 11): a constraint
violation's message names the statement, never the values (emails, names, secrets)."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from chassis.db import Connection
from chassis.settings import plain_dsn


async def test_an_integrity_error_does_not_show_its_parameters(env):
    raw = await asyncpg.connect(plain_dsn(env["database_url"]))
    try:
        await raw.execute("CREATE TEMP TABLE t (email text PRIMARY KEY)")
        conn = Connection(raw)
        secret = "grace.hopper+secret@example.org"
        await conn.execute(text("INSERT INTO t (email) VALUES (:e)"), {"e": secret})
        with pytest.raises(IntegrityError) as e:
            await conn.execute(text("INSERT INTO t (email) VALUES (:e)"), {"e": secret})
        assert secret not in str(e.value)
        assert e.value.params == {"e": secret}  # still there for code that handles it
    finally:
        await raw.close()


def test_a_statement_timeout_is_told_apart_from_a_bug():
    import asyncpg

    from chassis import faults

    try:
        try:
            raise asyncpg.QueryCanceledError("canceling statement due to statement timeout")
        except asyncpg.QueryCanceledError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert faults.is_statement_timeout(outer)
    assert not faults.is_statement_timeout(RuntimeError("a bug"))
    assert not faults.is_transient(asyncpg.QueryCanceledError("canceling statement due to statement timeout"))
