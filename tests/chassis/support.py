"""Helpers for the event-machinery tests: a cuttable TCP proxy, schemas, envelopes (waiting
is tests.helpers.eventually).

Everything here talks to the real PostgreSQL and RabbitMQ; nothing is mocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aio_pika
import asyncpg
from givance.events.v1 import event_pb2
from google.protobuf import wrappers_pb2
from sqlalchemy import NullPool, text
from sqlalchemy.ext.asyncio import create_async_engine
from yarl import URL

from chassis import events, migrate
from chassis.db import Database


def unique(prefix: str) -> str:
    return f"{prefix}.{uuid.uuid4().hex[:12]}"


# -- a TCP proxy in front of RabbitMQ that the test can cut and restore ------------------


class TcpProxy:
    """Forwards 127.0.0.1:<ephemeral> to a target. `cut()` aborts every open connection and
    makes new ones fail at once (accepted, then aborted); `restore()` forwards again."""

    def __init__(self, target_host: str = "127.0.0.1", target_port: int = 5672):
        self.target_host = target_host
        self.target_port = target_port
        self.port = 0
        self.is_cut = False
        self.accepted = 0
        self.refused = 0
        self._server: asyncio.Server | None = None
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task] = set()

    @classmethod
    def to(cls, amqp_url: str) -> TcpProxy:
        """A proxy in front of the broker that `amqp_url` names."""
        url = URL(amqp_url)
        return cls(url.host or "127.0.0.1", url.port or 5672)

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def url(self, amqp_url: str) -> str:
        """The same AMQP URL (credentials, vhost) but through this proxy."""
        return str(URL(amqp_url).with_host("127.0.0.1").with_port(self.port))

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.is_cut:
            self.refused += 1
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            self.refused += 1
            writer.transport.abort()
            return
        if self.is_cut:  # cut while we were connecting upstream
            self.refused += 1
            writer.transport.abort()
            up_writer.transport.abort()
            return
        self.accepted += 1
        link = (writer, up_writer)
        self._links.add(link)
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst, link))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter,
                    link: tuple[asyncio.StreamWriter, asyncio.StreamWriter]) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._links.discard(link)
            for w in link:
                w.transport.abort()

    def cut(self) -> None:
        self.is_cut = True
        for link in list(self._links):
            for w in link:
                w.transport.abort()
        self._links.clear()

    def restore(self) -> None:
        self.is_cut = False

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


# -- a throwaway schema with the real outbox and inbox tables -----------------------------


class _Op:
    """Just enough of alembic's `op` for chassis.migrate.outbox_tables (run inside run_sync)."""

    def __init__(self, bind):
        self._bind = bind

    def get_bind(self):
        return self._bind

    def execute(self, sql: str) -> None:
        self._bind.exec_driver_sql(sql)


@dataclass
class EventSchema:
    name: str
    db: Database  # the unit-of-work side, as a service has it
    dsn: str  # asyncpg form, for OutboxRelay
    conn: asyncpg.Connection  # for looking at what was written, outside any unit of work

    async def outbox(self) -> list[dict]:
        rows = await self.conn.fetch(
            f"SELECT id, event_id::text AS event_id, routing_key, published_at FROM {self.name}.outbox ORDER BY id")
        return [dict(r) for r in rows]

    async def scalar(self, sql: str, *args) -> Any:
        return await self.conn.fetchval(sql, *args)


async def create_event_schema(admin_url: str, name: str) -> None:
    """Schema `name` with chassis.migrate's own outbox/inbox DDL (run the way Alembic runs
    it, on a SQLAlchemy connection), plus `handled`, a table test handlers write to."""
    engine = create_async_engine(admin_url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"CREATE SCHEMA {name}"))
            await conn.run_sync(lambda sync_conn: migrate.outbox_tables(_Op(sync_conn), name))
            await conn.execute(text(
                f"CREATE TABLE {name}.handled (id bigserial PRIMARY KEY, event_id uuid NOT NULL, "
                "consumer text NOT NULL, tenant text)"))
    finally:
        await engine.dispose()


# -- events -------------------------------------------------------------------------------


def envelope(tenant: uuid.UUID, note: str = "", event_type: str = "test.thing.happened",
             aggregate_id: str = "thing-1") -> event_pb2.Event:
    return events.envelope(event_type, wrappers_pb2.StringValue(value=note), tenant, "thing", aggregate_id)


def amqp_message(env: event_pb2.Event) -> aio_pika.Message:
    return aio_pika.Message(
        body=env.SerializeToString(), message_id=env.id, type=env.type,
        content_type=events.CONTENT_TYPE, delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        headers={events.TENANT_HEADER: env.tenant_id},
    )


async def delete_consumer_topology(channel: aio_pika.abc.AbstractChannel, queue: str) -> None:
    """Remove what chassis.consumer.declare_topology declared for `queue` (the vhost is
    recreated per run anyway; this keeps a long session tidy)."""
    for name in (queue, f"{queue}.retry", f"{queue}.dlq"):
        with contextlib.suppress(Exception):
            await channel.queue_delete(name)


class Collector:
    """Consumes a queue with a plain aio-pika consumer and keeps every message it got."""

    def __init__(self) -> None:
        self.messages: list[aio_pika.abc.AbstractIncomingMessage] = []

    async def __call__(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        self.messages.append(message)
        await message.ack()

    def ids(self) -> list[str]:
        return [m.message_id for m in self.messages]


async def stop_task(task: asyncio.Task, stop: Callable[[], Awaitable[None]] | None = None) -> None:
    if stop is not None:
        with contextlib.suppress(Exception):
            await stop()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
