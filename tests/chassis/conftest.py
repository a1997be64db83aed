"""Fixtures for the event-machinery tests: a throwaway schema with its own outbox and inbox
(so the session's crm relay never claims our rows) and a plain AMQP channel on the test
vhost for declaring, observing and cleaning up."""

from __future__ import annotations

import uuid

import aio_pika
import asyncpg
import pytest

from chassis.db import Database, create_engine
from chassis.settings import ServiceSettings, plain_dsn
from tests.chassis.support import EventSchema, create_event_schema


@pytest.fixture
async def event_schema(env, admin_db):
    name = f"evt_{uuid.uuid4().hex[:12]}"
    admin_url = ServiceSettings().admin_database_url()
    await create_event_schema(admin_url, name)
    db = Database(create_engine(admin_url, pool_size=4, application_name=f"test-{name}"), name)
    conn = await asyncpg.connect(plain_dsn(admin_url))
    yield EventSchema(name=name, db=db, dsn=plain_dsn(admin_url), conn=conn)
    await conn.close()
    await db.dispose()
    await admin_db.execute(f"DROP SCHEMA {name} CASCADE")


@pytest.fixture
async def amqp_channel(env):
    conn = await aio_pika.connect(env["rabbitmq_url"], timeout=10)
    channel = await conn.channel()
    yield channel
    await conn.close()
