"""A database outage is not poison: the consumer holds its messages and handles each once when
PostgreSQL answers again, whatever the number of failed tries (issue 9, item 13).

The consumer's database connections go through a TCP proxy that the test cuts, so the handler's
transactions fail with real connection errors while RabbitMQ stays up."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.engine import make_url

from chassis import faults
from chassis.consumer import Consumer
from chassis.db import Database, create_engine
from chassis.settings import ServiceSettings
from tests.chassis.support import TcpProxy, amqp_message, envelope
from tests.chassis.test_consumer import Setup, handled_rows, inbox_count, queue_depth, recording_handler
from tests.helpers import eventually


async def test_a_database_outage_waits_instead_of_dead_lettering(event_schema, env, amqp_channel):
    admin = make_url(ServiceSettings().admin_database_url())
    proxy = await TcpProxy(admin.host or "127.0.0.1", admin.port or 5432).start()
    via_proxy = admin.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    db = Database(create_engine(via_proxy, pool_size=2, application_name="test-outage"), event_schema.name)
    s = Setup(event_schema, env, amqp_channel)
    max_attempts = 2
    s.consumer = Consumer(db, s.amqp_url, s.exchange, s.queue, ["test.#"],
                          recording_handler(event_schema.name, s.queue, s.calls),
                          max_attempts=max_attempts, backoff_base=0.01, prefetch=4, outage_backoff=(0.02, 0.1))
    await s.consumer.start()
    tenant = uuid.uuid4()
    try:
        first = envelope(tenant, "before the outage")
        await s.publish(amqp_message(first))
        await eventually(lambda: s.consumer.handled == 1, what="the event before the outage")

        proxy.cut()
        during = [envelope(tenant, f"during {i}", aggregate_id=f"thing-{i}") for i in range(3)]
        for event in during:
            await s.publish(amqp_message(event))
        # Far more failed tries than the poison limit allows, and still nothing dead-lettered.
        await eventually(lambda: s.consumer.outage_waits >= 5 * max_attempts, what="the consumer to keep waiting")
        assert await queue_depth(amqp_channel, f"{s.queue}.dlq") == 0

        proxy.restore()
        await eventually(lambda: s.consumer.handled == 4, what="the events held during the outage")
        for event in [first, *during]:
            assert await handled_rows(event_schema, event.id) == [{"consumer": s.queue, "tenant": str(tenant)}]
            assert await inbox_count(event_schema, s.queue, event.id) == 1
        for name in (s.queue, f"{s.queue}.retry", f"{s.queue}.dlq"):
            assert await queue_depth(amqp_channel, name) == 0, name
    finally:
        await s.close()
        await db.dispose()
        await proxy.close()


@pytest.mark.server_errors("dead-lettering")
async def test_a_failing_handler_with_healthy_infrastructure_is_still_poison(event_schema, env, amqp_channel):
    """The outage rule does not swallow real failures: a handler error is retried, then dead-lettered."""
    s = Setup(event_schema, env, amqp_channel)
    consumer = await s.start(max_attempts=2, backoff_base=0.01, prefetch=1)
    try:
        poison = envelope(uuid.uuid4(), "poison")
        await s.publish(amqp_message(poison))
        await eventually(lambda: queue_depth(amqp_channel, f"{s.queue}.dlq"), what="the poison message in the DLQ")
        assert consumer.outage_waits == 0
        assert s.calls.count(poison.id) == 2
    finally:
        await s.close()


def test_which_failures_are_outages():
    import asyncpg

    assert faults.is_transient(ConnectionRefusedError(111, "Connection refused"))
    assert faults.is_transient(asyncpg.CannotConnectNowError("the database system is starting up"))
    assert faults.is_transient(asyncpg.AdminShutdownError("terminating connection due to administrator command"))
    assert faults.is_transient(asyncpg.ConnectionDoesNotExistError("connection was closed in the middle"))
    assert faults.is_transient(TimeoutError())
    try:
        try:
            raise ConnectionResetError("reset")
        except ConnectionResetError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert faults.is_transient(outer)
    assert not faults.is_transient(RuntimeError("this event cannot be handled"))
    assert not faults.is_transient(asyncpg.UniqueViolationError("duplicate key"))
    assert not faults.is_transient(FileNotFoundError(2, "No such file"))
    assert not faults.is_transient(None)
