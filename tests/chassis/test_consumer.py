"""chassis.consumer.Consumer against the real PostgreSQL and RabbitMQ: inbox dedup, retries,
the dead-letter queue. Each test has its own schema (outbox, inbox and a `handled` table the
handler writes to), its own exchange and its own queue."""

from __future__ import annotations

import asyncio
import uuid

import aio_pika
import pytest
from givance.events.v1 import event_pb2
from google.protobuf import wrappers_pb2
from sqlalchemy import text
from yarl import URL

from chassis import events
from chassis.consumer import Consumer, declare_topology
from chassis.db import UnitOfWork
from tests.chassis.support import (
    TcpProxy,
    amqp_message,
    delete_consumer_topology,
    envelope,
    stop_task,
    unique,
)
from tests.helpers import eventually


def recording_handler(schema: str, consumer: str, calls: list[str], poison: str = "poison"):
    """Writes one `handled` row per handling, in the unit of work it is given; fails on `poison`."""

    async def handle(uow: UnitOfWork, event: event_pb2.Event) -> None:
        calls.append(event.id)
        await uow.conn.execute(
            text(f"INSERT INTO {schema}.handled (event_id, consumer, tenant) "
                 "VALUES (:e, :c, current_setting('app.tenant_id', true))"),
            {"e": event.id, "c": consumer},
        )
        if events.unpack(event, wrappers_pb2.StringValue).value == poison:
            raise RuntimeError("this event cannot be handled")

    return handle


async def handled_rows(event_schema, event_id: str) -> list[dict]:
    rows = await event_schema.conn.fetch(
        f"SELECT consumer, tenant FROM {event_schema.name}.handled WHERE event_id = $1", uuid.UUID(event_id))
    return [dict(r) for r in rows]


async def inbox_count(event_schema, consumer: str, event_id: str | None = None) -> int:
    sql = f"SELECT count(*) FROM {event_schema.name}.inbox WHERE consumer = $1"
    if event_id is None:
        return await event_schema.scalar(sql, consumer)
    return await event_schema.scalar(sql + " AND event_id = $2", consumer, uuid.UUID(event_id))


async def queue_depth(channel: aio_pika.abc.AbstractChannel, name: str) -> int:
    q = await channel.declare_queue(name, passive=True)
    return q.declaration_result.message_count


class Setup:
    def __init__(self, event_schema, env, amqp_channel, amqp_url: str | None = None):
        self.event_schema = event_schema
        self.amqp_url = amqp_url or env["rabbitmq_url"]
        self.channel = amqp_channel
        self.exchange = unique("consumertest")
        self.queue = unique("consumertest.q")
        self.calls: list[str] = []
        self.consumer: Consumer | None = None

    def make(self, **kw) -> Consumer:
        handler = recording_handler(self.event_schema.name, self.queue, self.calls)
        self.consumer = Consumer(self.event_schema.db, self.amqp_url, self.exchange, self.queue,
                                 ["test.#"], handler, **kw)
        return self.consumer

    async def start(self, **kw) -> Consumer:
        consumer = self.make(**kw)
        await consumer.start()
        return consumer

    async def publish(self, message: aio_pika.Message, routing_key: str = "test.thing.happened") -> None:
        ex = await self.channel.get_exchange(self.exchange)
        await ex.publish(message, routing_key=routing_key)

    async def close(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()
        await delete_consumer_topology(self.channel, self.queue)
        await self.channel.exchange_delete(self.exchange)


async def test_delivering_one_event_twice_changes_nothing(event_schema, env, amqp_channel):
    s = Setup(event_schema, env, amqp_channel)
    # prefetch 2: the later deliveries only arrive if the earlier ones, repeats included, were acked.
    consumer = await s.start(max_attempts=3, backoff_base=0.05, prefetch=2)
    tenant = uuid.uuid4()
    try:
        once = envelope(tenant, "hello")
        # The same bytes and event id twice, back to back (both can be in flight together) ...
        await s.publish(amqp_message(once))
        await s.publish(amqp_message(once))
        await eventually(lambda: consumer.handled == 2, what="both deliveries acked")
        # ... and once more after the first handling committed, as a redelivery would be.
        await s.publish(amqp_message(once))
        await eventually(lambda: consumer.handled == 3, what="the redelivery acked")

        assert s.calls == [once.id], "the handler ran for a repeat"
        assert await handled_rows(event_schema, once.id) == [{"consumer": s.queue, "tenant": str(tenant)}]
        assert await inbox_count(event_schema, s.queue, once.id) == 1

        other = envelope(tenant, "another")
        await s.publish(amqp_message(other))
        await eventually(lambda: consumer.handled == 4, what="a different event")
        assert s.calls == [once.id, other.id]
        assert await inbox_count(event_schema, s.queue) == 2
        assert await queue_depth(amqp_channel, s.queue) == 0
    finally:
        await s.close()


async def test_the_inbox_is_per_consumer(event_schema, env, amqp_channel):
    """Two consumer purposes bound to the same event each handle it once."""
    a = Setup(event_schema, env, amqp_channel)
    b = Setup(event_schema, env, amqp_channel)
    b.exchange = a.exchange
    tenant = uuid.uuid4()
    try:
        await a.start()
        await b.start()
        event = envelope(tenant, "shared")
        await a.publish(amqp_message(event))
        await eventually(lambda: a.consumer.handled == 1 and b.consumer.handled == 1, what="both consumers")
        assert a.calls == [event.id] and b.calls == [event.id]
        assert await inbox_count(event_schema, a.queue, event.id) == 1
        assert await inbox_count(event_schema, b.queue, event.id) == 1
    finally:
        await b.consumer.stop()
        await delete_consumer_topology(amqp_channel, b.queue)
        b.consumer = None
        await a.close()


@pytest.mark.server_errors("dead-lettering")
async def test_a_poison_message_is_dead_lettered_and_the_queue_moves_on(event_schema, env, amqp_channel):
    s = Setup(event_schema, env, amqp_channel)
    max_attempts = 3
    # prefetch 1: the good message can only be delivered once the poison one has left the way.
    consumer = await s.start(max_attempts=max_attempts, backoff_base=0.05, prefetch=1)
    tenant = uuid.uuid4()
    try:
        poison = envelope(tenant, "poison")
        good = envelope(tenant, "fine")
        await s.publish(amqp_message(poison))
        await s.publish(amqp_message(good))

        await eventually(lambda: good.id in s.calls, what="the good message behind the poison one")
        dlq = await amqp_channel.declare_queue(f"{s.queue}.dlq", passive=True)
        dead = await eventually(lambda: dlq.get(no_ack=True, fail=False), what="the poison message in the DLQ")

        assert dead.message_id == poison.id
        assert dead.body == poison.SerializeToString()
        assert dead.headers[events.ATTEMPTS_HEADER] == max_attempts
        assert "cannot be handled" in str(dead.headers["x-givance-error"])
        assert s.calls.count(poison.id) == max_attempts, "the handler ran a wrong number of times"
        assert s.calls.count(good.id) == 1
        # The failed attempts rolled back: no handling row, no inbox row for the poison event.
        assert await handled_rows(event_schema, poison.id) == []
        assert await inbox_count(event_schema, s.queue, poison.id) == 0
        assert await handled_rows(event_schema, good.id) == [{"consumer": s.queue, "tenant": str(tenant)}]
        assert await inbox_count(event_schema, s.queue, good.id) == 1
        # Nothing left anywhere but what we took off the DLQ.
        for name in (s.queue, f"{s.queue}.retry", f"{s.queue}.dlq"):
            assert await queue_depth(amqp_channel, name) == 0, name
        assert consumer.handled == 1
    finally:
        await s.close()


@pytest.mark.server_errors("undecodable")
async def test_an_undecodable_message_is_dead_lettered_without_retries(event_schema, env, amqp_channel):
    s = Setup(event_schema, env, amqp_channel)
    await s.start(max_attempts=3, backoff_base=0.05, prefetch=1)
    tenant = uuid.uuid4()
    try:
        await s.publish(aio_pika.Message(body=b"\xff\x00 not an envelope", message_id="garbage"))
        good = envelope(tenant, "fine")
        await s.publish(amqp_message(good))
        await eventually(lambda: good.id in s.calls, what="the good message behind the garbage")
        dlq = await amqp_channel.declare_queue(f"{s.queue}.dlq", passive=True)
        dead = await eventually(lambda: dlq.get(no_ack=True, fail=False), what="the garbage in the DLQ")
        assert dead.message_id == "garbage"
        assert str(dead.headers["x-givance-error"]).startswith("undecodable")
        assert s.calls == [good.id]
    finally:
        await s.close()


@pytest.mark.server_errors("aio_pika")  # its robust channel logs the cut connection
async def test_a_consumer_resumes_after_a_broker_outage(event_schema, env, amqp_channel):
    """Connected through a proxy we cut: events published meanwhile wait in the durable queue
    and are handled once the robust connection is back."""
    proxy = await TcpProxy.to(env["rabbitmq_url"]).start()
    # aio-pika's robust connection retries every reconnect_interval seconds (5 by default).
    url = str(URL(proxy.url(env["rabbitmq_url"])).update_query(reconnect_interval="0.2"))
    s = Setup(event_schema, env, amqp_channel, amqp_url=url)
    consumer = await s.start(max_attempts=3, backoff_base=0.05)
    tenant = uuid.uuid4()
    try:
        before = envelope(tenant, "before")
        await s.publish(amqp_message(before))
        await eventually(lambda: s.calls == [before.id], what="the event before the outage")

        proxy.cut()
        during = [envelope(tenant, f"during {i}") for i in range(3)]
        for event in during:
            await s.publish(amqp_message(event))  # straight to the broker, which is up
        await eventually(lambda: proxy.refused >= 1, what="the consumer to try to reconnect")
        assert s.calls == [before.id]

        proxy.restore()
        await eventually(lambda: len(s.calls) == 4, what="the events published during the outage")
        assert sorted(s.calls[1:]) == sorted(e.id for e in during)
        for event in [before, *during]:
            assert await inbox_count(event_schema, s.queue, event.id) == 1
        assert consumer.handled == 4
    finally:
        await s.close()
        await proxy.close()


async def test_a_consumer_started_while_the_broker_is_down_catches_up(event_schema, env, amqp_channel):
    """The queue is declared up front (as chassis.migrate does); Consumer.run keeps trying to
    start while the broker is unreachable, then handles what waited in the queue."""
    proxy = await TcpProxy.to(env["rabbitmq_url"]).start()
    proxy.cut()
    s = Setup(event_schema, env, amqp_channel, amqp_url=proxy.url(env["rabbitmq_url"]))
    await declare_topology(amqp_channel, s.exchange, s.queue, ["test.#"], 3)
    consumer = s.make(max_attempts=3, backoff_base=0.05)
    task = asyncio.create_task(consumer.run())
    tenant = uuid.uuid4()
    try:
        waiting = envelope(tenant, "published before the consumer ever connected")
        await s.publish(amqp_message(waiting))
        await eventually(lambda: proxy.refused >= 2, what="the consumer to retry its start")
        assert s.calls == []

        proxy.restore()
        await eventually(lambda: s.calls == [waiting.id], what="the waiting event")
        await eventually(lambda: task.done(), what="Consumer.run to return once started")
        assert task.exception() is None
        later = envelope(tenant, "later")
        await s.publish(amqp_message(later))
        await eventually(lambda: s.calls == [waiting.id, later.id], what="a later event")
    finally:
        await stop_task(task)
        await s.close()
        await proxy.close()
