"""The outbox relay against the real PostgreSQL and RabbitMQ.

Each test owns a throwaway schema (its own outbox, so the session's crm relay never claims
its rows) and a unique exchange; a fresh exclusive queue bound to that exchange shows
exactly what this relay published.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import aio_pika
from givance.events.v1 import crm_events_pb2
from google.type import money_pb2
from sqlalchemy import text

from chassis import events
from chassis.consumer import Consumer
from chassis.outbox import OutboxRelay
from tests.chassis.support import Collector, TcpProxy, delete_consumer_topology, stop_task, unique
from tests.helpers import eventually

ROUTING_KEY = "crm.donation.recorded"


async def write_events(event_schema, tenant: uuid.UUID, n: int, donor: str) -> list[str]:
    """n donation events, each in its own committed unit of work (as RecordDonation does)."""
    ids = []
    for _ in range(n):
        async with event_schema.db.unit_of_work(tenant) as uow:
            ids.append(uow.publish(
                ROUTING_KEY,
                crm_events_pb2.DonationRecordedEvent(
                    donation_id=str(uuid.uuid4()), donor_id=donor,
                    amount=money_pb2.Money(currency_code="USD", units=25)),
                aggregate_type="donor", aggregate_id=donor,
            ))
    return ids


async def observe(channel: aio_pika.abc.AbstractChannel, exchange: str, key: str = "#") -> Collector:
    """Declare the exchange (as the relay does) and consume a fresh exclusive queue bound to it."""
    ex = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    q = await channel.declare_queue(exclusive=True)
    await q.bind(ex, routing_key=key)
    collector = Collector()
    await q.consume(collector)
    return collector


async def unpublished(event_schema) -> list[str]:
    return [r["event_id"] for r in await event_schema.outbox() if r["published_at"] is None]


async def test_broker_outage_delays_events_and_loses_none(event_schema, amqp_channel, env):
    exchange = unique("relaytest")
    seen = await observe(amqp_channel, exchange)
    proxy = await TcpProxy.to(env["rabbitmq_url"]).start()
    relay = OutboxRelay(event_schema.dsn, event_schema.name, proxy.url(env["rabbitmq_url"]), exchange,
                        poll_interval=0.2, confirm_timeout=5.0)
    task = asyncio.create_task(relay.run())
    tenant, donor = uuid.uuid4(), str(uuid.uuid4())
    try:
        before = await write_events(event_schema, tenant, 3, donor)
        await eventually(lambda: set(before) <= set(seen.ids()), what="the events before the outage")
        await eventually(lambda: _none_unsent(event_schema), what="the first rows marked sent")
        assert proxy.accepted >= 1, "the relay must really go through the proxy"

        proxy.cut()
        during = await write_events(event_schema, tenant, 5, donor)  # commits need no broker
        refused_at_cut = proxy.refused
        await eventually(lambda: proxy.refused >= refused_at_cut + 2,
                         what="the relay to retry against the cut broker")
        assert set(await unpublished(event_schema)) == set(during)
        assert not set(during) & set(seen.ids())

        accepted_before_restore = proxy.accepted
        proxy.restore()
        await eventually(lambda: set(during) <= set(seen.ids()), what="the events written during the outage")
        assert proxy.accepted > accepted_before_restore, "the relay did not reconnect through the proxy"
        await eventually(lambda: _none_unsent(event_schema), what="every row marked sent")

        # A last event: the queue is FIFO and the relay publishes in outbox order, so once it
        # is here, any repeat of an earlier event would be here too.
        sentinel = await write_events(event_schema, tenant, 1, donor)
        await eventually(lambda: sentinel[0] in seen.ids(), what="the sentinel event")

        counts = Counter(seen.ids())
        assert {i: c for i, c in counts.items() if c != 1} == {}, "an event was published more than once"
        assert seen.ids() == before + during + sentinel, "events of one aggregate left out of order"
        for message in seen.messages:
            env_ = events.parse(message.body)
            assert env_.id == message.message_id
            assert env_.tenant_id == str(tenant)
            assert message.routing_key == ROUTING_KEY
            assert message.headers[events.TENANT_HEADER] == str(tenant)
            assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    finally:
        await stop_task(task, relay.stop)
        await proxy.close()
        await amqp_channel.exchange_delete(exchange)


async def _none_unsent(event_schema) -> bool:
    return not await unpublished(event_schema)


async def test_a_nacked_publish_counts_as_unsent(event_schema, amqp_channel, env):
    exchange = unique("relaytest")
    ex = await amqp_channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    # A queue that takes nothing and says so: RabbitMQ answers basic.nack to the publisher.
    blocker = await amqp_channel.declare_queue(
        unique("relaytest.blocker"), arguments={"x-max-length": 0, "x-overflow": "reject-publish"})
    await blocker.bind(ex, routing_key=ROUTING_KEY)
    relay = OutboxRelay(event_schema.dsn, event_schema.name, env["rabbitmq_url"], exchange, confirm_timeout=10.0)
    tenant, donor = uuid.uuid4(), str(uuid.uuid4())
    try:
        ids = await write_events(event_schema, tenant, 3, donor)
        await relay._ensure_db()
        await relay._ensure_broker()
        try:
            sent = await relay.publish_batch()
        except Exception as exc:  # raising is one acceptable way to say "not sent"
            sent = exc
        assert sent == 0 or isinstance(sent, Exception), f"a nacked batch was reported sent: {sent!r}"
        assert sorted(await unpublished(event_schema)) == sorted(ids), "a nacked event was marked published"
        assert relay.published == 0

        await blocker.delete(if_unused=False, if_empty=False)
        seen = await observe(amqp_channel, exchange, ROUTING_KEY)
        await relay._ensure_broker()
        assert await relay.publish_batch() == 3
        assert await unpublished(event_schema) == []
        await eventually(lambda: sorted(seen.ids()) == sorted(ids), what="the events once the broker accepts them")
    finally:
        await relay.stop()
        await amqp_channel.exchange_delete(exchange)


async def test_relay_is_woken_by_notify_and_skips_sent_rows(event_schema, amqp_channel, env):
    """A long poll interval: only the NOTIFY of the committing unit of work can wake it in time."""
    exchange = unique("relaytest")
    seen = await observe(amqp_channel, exchange)
    relay = OutboxRelay(event_schema.dsn, event_schema.name, env["rabbitmq_url"], exchange, poll_interval=3600)
    task = asyncio.create_task(relay.run())
    tenant, donor = uuid.uuid4(), str(uuid.uuid4())
    try:
        await eventually(lambda: relay._exchange is not None, what="the relay to connect")
        first = await write_events(event_schema, tenant, 2, donor)
        await eventually(lambda: seen.ids() == first, what="the first events")
        second = await write_events(event_schema, tenant, 1, donor)
        await eventually(lambda: len(seen.ids()) == 3, what="the next event")
        assert seen.ids() == first + second
        await eventually(lambda: _none_unsent(event_schema), what="every row marked sent")
        assert relay.published == 3
    finally:
        await stop_task(task, relay.stop)
        await amqp_channel.exchange_delete(exchange)


async def test_rows_beyond_one_batch_all_go(event_schema, amqp_channel, env):
    exchange = unique("relaytest")
    seen = await observe(amqp_channel, exchange)
    tenant, donor = uuid.uuid4(), str(uuid.uuid4())
    ids = await write_events(event_schema, tenant, 5, donor)  # written before the relay starts
    relay = OutboxRelay(event_schema.dsn, event_schema.name, env["rabbitmq_url"], exchange,
                        batch_size=2, poll_interval=3600)
    task = asyncio.create_task(relay.run())
    try:
        await eventually(lambda: len(seen.ids()) >= 5, what="all five events")
        assert seen.ids() == ids
        # Marked sent after the broker's confirms, so possibly a moment after delivery.
        await eventually(lambda: _none_unsent(event_schema), what="every row marked sent")
    finally:
        await stop_task(task, relay.stop)
        await amqp_channel.exchange_delete(exchange)


async def test_an_event_the_relay_sends_twice_is_handled_once(event_schema, amqp_channel, env):
    """A relay that dies after the broker's confirm but before marking the row sends the row
    again: the consumer's inbox makes the repeat harmless."""
    exchange, queue = unique("relaytest"), unique("relaytest.q")
    schema = event_schema.name
    calls: list[str] = []

    async def handler(uow, event) -> None:
        calls.append(event.id)
        await uow.conn.execute(text(f"INSERT INTO {schema}.handled (event_id, consumer) VALUES (:e, :c)"),
                               {"e": event.id, "c": queue})

    consumer = Consumer(event_schema.db, env["rabbitmq_url"], exchange, queue, [ROUTING_KEY], handler)
    relay = OutboxRelay(event_schema.dsn, schema, env["rabbitmq_url"], exchange)
    try:
        await consumer.start()
        [event_id] = await write_events(event_schema, uuid.uuid4(), 1, str(uuid.uuid4()))
        await relay._ensure_db()
        await relay._ensure_broker()
        assert await relay.publish_batch() == 1
        await eventually(lambda: consumer.handled == 1, what="the first delivery")
        # The crash: the row is as if never marked, so the relay publishes it again.
        await relay._db.execute(f"UPDATE {schema}.outbox SET published_at = NULL")
        assert await relay.publish_batch() == 1
        await eventually(lambda: consumer.handled == 2, what="the repeat acked")

        assert calls == [event_id]
        assert await event_schema.scalar(f"SELECT count(*) FROM {schema}.handled") == 1
        assert await event_schema.scalar(
            f"SELECT count(*) FROM {schema}.inbox WHERE consumer = $1 AND event_id = $2",
            queue, uuid.UUID(event_id)) == 1
    finally:
        await relay.stop()
        await consumer.stop()
        await delete_consumer_topology(amqp_channel, queue)
        await amqp_channel.exchange_delete(exchange)


async def test_sent_rows_are_pruned_after_the_retention_and_unsent_ones_never(event_schema, env):
    """Event payloads may carry links and codes meant for a user: the outbox forgets them."""
    tenant, donor = uuid.uuid4(), str(uuid.uuid4())
    old, recent, unsent = (await write_events(event_schema, tenant, 3, donor))
    await event_schema.conn.execute(
        f"UPDATE {event_schema.name}.outbox SET published_at = now() - interval '2 hours' "
        "WHERE event_id = $1::uuid", old)
    await event_schema.conn.execute(
        f"UPDATE {event_schema.name}.outbox SET published_at = now() WHERE event_id = $1::uuid", recent)
    relay = OutboxRelay(event_schema.dsn, event_schema.name, env["rabbitmq_url"], unique("relaytest"),
                        retention_seconds=3600)
    await relay._ensure_db()
    try:
        assert await relay.prune() == 1
    finally:
        await relay.stop()
    left = {r["event_id"] for r in await event_schema.outbox()}
    assert left == {recent, unsent}


async def test_inbox_rows_are_pruned_after_the_inbox_retention(event_schema, env):
    """The inbox keeps handled ids longer than any redelivery window, then forgets them."""
    ancient, fresh = uuid.uuid4(), uuid.uuid4()
    await event_schema.conn.execute(
        f"INSERT INTO {event_schema.name}.inbox (consumer, event_id, created_at) VALUES "
        "('q', $1, now() - interval '8 days'), ('q', $2, now() - interval '6 days')", ancient, fresh)
    relay = OutboxRelay(event_schema.dsn, event_schema.name, env["rabbitmq_url"], unique("relaytest"))
    await relay._ensure_db()
    try:
        await relay.prune()
    finally:
        await relay.stop()
    left = await event_schema.conn.fetch(f"SELECT event_id FROM {event_schema.name}.inbox")
    assert [r["event_id"] for r in left] == [fresh]
