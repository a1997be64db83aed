"""UnitOfWork.publish: outbox rows are written in the unit's own transaction, a NOTIFY wakes
the relay, and a failure anywhere (the outbox write included) leaves nothing behind."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid

import asyncpg
import pytest
from google.protobuf import wrappers_pb2
from sqlalchemy import text

from chassis import events
from chassis.db import Database, create_engine
from chassis.settings import ServiceSettings
from tests.helpers import eventually


def publish_one(uow, note: str = "x") -> str:
    return uow.publish("test.thing.happened", wrappers_pb2.StringValue(value=note),
                       aggregate_type="thing", aggregate_id="thing-1")


async def test_outbox_rows_commit_with_the_change_and_roll_back_with_it(event_schema, env):
    schema, db = event_schema.name, event_schema.db
    tenant = uuid.uuid4()
    listener = await asyncpg.connect(event_schema.dsn)
    notified = asyncio.Event()
    await listener.add_listener(events.outbox_channel(schema), lambda *_: notified.set())
    try:
        with pytest.raises(RuntimeError, match="changed my mind"):
            async with db.unit_of_work(tenant) as uow:
                await uow.conn.execute(text(f"INSERT INTO {schema}.handled (event_id, consumer) "
                                            "VALUES (gen_random_uuid(), 'rolled back')"))
                publish_one(uow)
                raise RuntimeError("changed my mind")
        assert await event_schema.outbox() == []
        assert await event_schema.scalar(f"SELECT count(*) FROM {schema}.handled") == 0

        async with db.unit_of_work(tenant) as uow:
            await uow.conn.execute(text(f"INSERT INTO {schema}.handled (event_id, consumer) "
                                        "VALUES (gen_random_uuid(), 'committed')"))
            event_id = publish_one(uow, "kept")
            # Not visible to anyone before the commit.
            assert await event_schema.outbox() == []
        await asyncio.wait_for(notified.wait(), timeout=20)

        [row] = await event_schema.conn.fetch(
            f"SELECT event_id::text AS event_id, routing_key, tenant_id, aggregate_id, body, headers, "
            f"published_at FROM {schema}.outbox")
        assert row["event_id"] == event_id
        assert row["routing_key"] == "test.thing.happened"
        assert row["tenant_id"] == tenant
        assert row["aggregate_id"] == "thing-1"
        assert row["published_at"] is None
        headers = row["headers"] if isinstance(row["headers"], dict) else json.loads(row["headers"])
        assert headers[events.TENANT_HEADER] == str(tenant)
        env_ = events.parse(bytes(row["body"]))
        assert (env_.id, env_.type, env_.tenant_id) == (event_id, "test.thing.happened", str(tenant))
        assert events.unpack(env_, wrappers_pb2.StringValue).value == "kept"
        assert await event_schema.scalar(f"SELECT count(*) FROM {schema}.handled") == 1
    finally:
        await listener.close()


async def _add_outbox_trigger(admin_db, schema: str, body: str) -> None:
    await admin_db.execute(f"""
        CREATE FUNCTION {schema}.outbox_trap() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN {body} RETURN NEW; END $$;
        CREATE TRIGGER outbox_trap BEFORE INSERT ON {schema}.outbox
          FOR EACH ROW EXECUTE FUNCTION {schema}.outbox_trap();
    """)


async def test_a_failed_outbox_write_ends_the_transaction(event_schema, admin_db, env):
    """The outbox insert fails: the whole unit rolls back and its connection goes back to the
    pool at once (not left idle in transaction until the garbage collector finds it)."""
    schema = event_schema.name
    await _add_outbox_trigger(admin_db, schema, "RAISE EXCEPTION 'the outbox refuses this row';")
    app = f"uow-fail-{uuid.uuid4().hex[:8]}"
    db = Database(create_engine(ServiceSettings().admin_database_url(), pool_size=1, application_name=app), schema)
    uow = db.unit_of_work(uuid.uuid4())
    try:
        with pytest.raises(Exception, match="the outbox refuses this row"):
            async with uow:
                await uow.conn.execute(text(f"INSERT INTO {schema}.handled (event_id, consumer) "
                                            "VALUES (gen_random_uuid(), 'with a failing event')"))
                publish_one(uow)
        assert await event_schema.scalar(f"SELECT count(*) FROM {schema}.handled") == 0
        assert db.engine.pool.checkedout() == 0, "the connection was never returned to the pool"
        # Rolled back, or its connection discarded (the server notices that a moment later).
        await eventually(lambda: _no_busy_backends(admin_db, app), what="the failed transaction to end")
    finally:
        with contextlib.suppress(Exception):
            await uow.conn.close()
        await db.dispose()


async def test_a_cancelled_outbox_write_ends_the_transaction(event_schema, admin_db, env):
    """A cancellation (an RPC deadline) while the outbox rows are written: the connection goes
    back to the pool (or is discarded) and nothing is committed."""
    schema = event_schema.name
    await _add_outbox_trigger(admin_db, schema, "PERFORM pg_sleep(60);")
    app = f"uow-cancel-{uuid.uuid4().hex[:8]}"
    db = Database(create_engine(ServiceSettings().admin_database_url(), pool_size=1, application_name=app), schema)

    async def work() -> None:
        async with db.unit_of_work(uuid.uuid4()) as uow:
            await uow.conn.execute(text(f"INSERT INTO {schema}.handled (event_id, consumer) "
                                        "VALUES (gen_random_uuid(), 'cancelled')"))
            publish_one(uow)

    task = asyncio.create_task(work())
    try:
        await eventually(lambda: admin_db.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state = 'active' "
            "AND query LIKE '%outbox%'", app), what="the outbox insert to be running")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert db.engine.pool.checkedout() == 0, "the connection was never returned to the pool"
        await _terminate(admin_db, app)  # whatever still runs server-side (see the next test)
        await eventually(lambda: _no_backends(admin_db, app), what="the session to end")
        assert await event_schema.scalar(f"SELECT count(*) FROM {schema}.handled") == 0
        assert await event_schema.outbox() == []
    finally:
        await _terminate(admin_db, app)
        await db.dispose()


async def test_a_cancelled_unit_of_work_stops_its_statement_on_the_server(event_schema, admin_db, env):
    """An RPC deadline fires while its unit of work waits for a row lock: the server must stop
    that statement, not leave it queued behind the lock (and holding its own locks)."""
    schema = event_schema.name
    row_id = await admin_db.fetchval(
        f"INSERT INTO {schema}.handled (event_id, consumer) VALUES (gen_random_uuid(), 'locked') RETURNING id")
    app = f"uow-lockwait-{uuid.uuid4().hex[:8]}"
    db = Database(create_engine(ServiceSettings().admin_database_url(), pool_size=1, application_name=app), schema)
    blocker = await asyncpg.connect(event_schema.dsn)
    blocking = blocker.transaction()
    await blocking.start()
    await blocker.execute(f"SELECT 1 FROM {schema}.handled WHERE id = $1 FOR UPDATE", row_id)

    async def work() -> None:
        async with db.unit_of_work(uuid.uuid4()) as uow:
            await uow.conn.execute(text(f"UPDATE {schema}.handled SET consumer = 'cancelled' WHERE id = :id"),
                                   {"id": row_id})

    task = asyncio.create_task(work())
    try:
        await eventually(lambda: admin_db.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
            app), what="the unit of work to wait for the lock")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await eventually(lambda: _no_busy_backends(admin_db, app), what="the cancelled statement to stop")
    finally:
        await blocking.rollback()
        await blocker.close()
        await _terminate(admin_db, app)
        await db.dispose()


async def _terminate(admin_db, app: str) -> None:
    await admin_db.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", app)


async def _no_backends(admin_db, app: str) -> bool:
    return await admin_db.fetchval("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", app) == 0


async def _no_busy_backends(admin_db, app: str) -> bool:
    """No session of `app` running a statement or sitting in a transaction."""
    return await admin_db.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state <> 'idle'", app) == 0


async def test_a_unit_of_work_cancelled_at_any_step_returns_a_clean_connection(event_schema, env):
    """Cancelled at every point from the BEGIN to the COMMIT, and cancelled again while it
    rolls back: the connection always goes back to the pool with no transaction open, and
    asyncio reports nothing (asyncpg's pool logs an ERROR when it must end a transaction
    itself: a BEGIN cancelled before its answer still looked idle)."""
    schema = event_schema.name
    db = Database(create_engine(ServiceSettings().admin_database_url(), pool_size=1,
                                application_name=f"uow-steps-{uuid.uuid4().hex[:8]}"), schema)
    loop = asyncio.get_running_loop()
    reported: list[dict] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))

    async def work() -> None:
        async with db.unit_of_work(uuid.uuid4()) as uow:
            await uow.conn.execute(text(f"INSERT INTO {schema}.handled (event_id, consumer) "
                                        "VALUES (gen_random_uuid(), 'steps')"))

    try:
        for steps in range(40):
            for twice in (False, True):
                task = asyncio.create_task(work())
                for _ in range(steps):
                    await asyncio.sleep(0)
                task.cancel()
                if twice:
                    await asyncio.sleep(0)
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                await eventually(lambda: db.engine.pool.checkedout() == 0,
                                 what="the connection to come back to the pool")
                async with db.unit_of_work(uuid.uuid4()) as uow:  # the next user finds it clean
                    assert await uow.conn.raw.fetchval("SELECT 1") == 1
        assert reported == [], reported
    finally:
        loop.set_exception_handler(previous)
        await db.dispose()
