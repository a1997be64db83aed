"""Server-side limits on every pooled connection (issue 9, item 7): a runaway statement is
cancelled at statement_timeout, and a transaction left idle (a handler that stalls inside a
unit of work) is ended by the server at idle_in_transaction_session_timeout, so neither holds
a connection for ever. Both are settings (db_statement_timeout_ms,
db_idle_in_transaction_timeout_ms) with defaults, applied by the spec's engine."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from chassis.db import Database, create_engine
from chassis.settings import ServiceSettings
from tests.helpers import eventually


@pytest.fixture
async def limited_db(env):
    name = f"limits-{uuid.uuid4().hex[:8]}"
    db = Database(create_engine(ServiceSettings().app_database_url("crm"), pool_size=2, application_name=name,
                                statement_timeout_ms=300, idle_in_transaction_timeout_ms=300), "crm")
    yield name, db
    await db.dispose()


async def test_a_statement_past_the_statement_timeout_is_cancelled(limited_db):
    _, db = limited_db
    with pytest.raises(asyncpg.QueryCanceledError, match="statement timeout"):
        async with db.unit_of_work(uuid.uuid4()) as uow:
            await uow.conn.raw.execute("SELECT pg_sleep(30)")
    async with db.unit_of_work(uuid.uuid4()) as uow:  # the connection is fine afterwards
        assert await uow.conn.raw.fetchval("SELECT 1") == 1


async def test_a_transaction_left_idle_is_ended_by_the_server(limited_db, admin_db):
    name, db = limited_db

    async def open_transactions() -> int:
        return await admin_db.fetchval("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 "
                                       "AND state LIKE 'idle in transaction%'", name)
    with pytest.raises((asyncpg.PostgresConnectionError, asyncpg.InterfaceError, ConnectionError)):
        async with db.unit_of_work(uuid.uuid4()) as uow:
            await uow.conn.raw.execute("SELECT 1")
            assert await open_transactions() == 1
            await eventually(lambda: _gone(admin_db, name), what="the server to end the idle transaction")
            await uow.conn.raw.execute("SELECT 1")  # the server closed this connection
    async with db.unit_of_work(uuid.uuid4()) as uow:  # the pool hands out a fresh one
        assert await uow.conn.raw.fetchval("SELECT 1") == 1


async def _gone(admin_db, name: str) -> bool:
    return await admin_db.fetchval("SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = $1 "
                                   "AND state LIKE 'idle in transaction%'", name)

