"""Per-service broker users against the real RabbitMQ: a service publishes only its own routing
keys, cannot forge who published, and a consumer refuses an event its publisher may not speak
for. Two throwaway services (a publisher and a consumer), their users in this run's vhost."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import uuid

import aio_pika
import pytest
from aio_pika.exceptions import ChannelClosed
from givance.events.v1 import event_pb2

from chassis import broker, events
from chassis.consumer import Consumer
from chassis.db import UnitOfWork
from tests.chassis.support import amqp_message, delete_consumer_topology, envelope, stop_task
from tests.helpers import eventually

EXCHANGE = "givance.events"


@pytest.fixture(scope="module")
async def users(env):
    """(publisher service, consumer service, URL of each): givance-<name> users made as migrate makes
    them (once for the module: rabbitmqctl takes seconds a call)."""
    url = env["rabbitmq_url"]
    publisher, consumer = f"pub{uuid.uuid4().hex[:8]}", f"con{uuid.uuid4().hex[:8]}"
    made = []
    for service in (publisher, consumer):
        password = uuid.uuid4().hex
        assert broker.ensure_service_user(url, EXCHANGE, events.DEAD_LETTER_EXCHANGE, service, password)
        made.append(broker.with_user(url, broker.service_user(service), password))
    yield publisher, consumer, made[0], made[1]
    for service in (publisher, consumer):
        await asyncio.to_thread(subprocess.run, ["rabbitmqctl", "-q", "delete_user", broker.service_user(service)],
                                capture_output=True)


async def _publish(url: str, routing_key: str, message: aio_pika.Message, *, default_exchange: bool = False) -> None:
    conn = await aio_pika.connect(url, timeout=10)
    try:
        channel = await conn.channel(publisher_confirms=True)
        exchange = channel.default_exchange if default_exchange else await channel.get_exchange(EXCHANGE,
                                                                                                 ensure=False)
        await exchange.publish(message, routing_key=routing_key)
        await channel.close()
    finally:
        await conn.close()


def _message(event: event_pb2.Event, user_id: str, tenant: str | None = None) -> aio_pika.Message:
    message = amqp_message(event)
    message.user_id = user_id
    if tenant is not None:
        message.headers[events.TENANT_HEADER] = tenant
    return message


async def test_a_service_user_publishes_only_its_own_routing_keys_as_itself(users, amqp_channel):
    publisher, consumer, publisher_url, _ = users
    await amqp_channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    me = broker.service_user(publisher)
    own = envelope(uuid.uuid4(), event_type=f"{publisher}.thing.happened")
    await _publish(publisher_url, own.type, _message(own, me))  # its own key: confirmed
    other = envelope(uuid.uuid4(), event_type=f"{consumer}.thing.happened")
    with pytest.raises(ChannelClosed, match=r"ACCESS_REFUSED|access to topic"):
        await _publish(publisher_url, other.type, _message(other, me))
    # it cannot claim to be another service: the broker checks user_id against the connection
    with pytest.raises(ChannelClosed, match=r"PRECONDITION_FAILED|user_id"):
        await _publish(publisher_url, own.type, _message(own, broker.service_user(consumer)))


@pytest.mark.server_errors("refused event")
async def test_a_consumer_refuses_events_their_publisher_may_not_speak_for(users, event_schema, amqp_channel, env):
    publisher, consumer, publisher_url, consumer_url = users
    queue = f"{consumer}.refusals"
    handled: list[str] = []

    async def handler(uow: UnitOfWork, event: event_pb2.Event) -> None:
        handled.append(event.id)

    worker = Consumer(event_schema.db, consumer_url, EXCHANGE, queue, [f"{publisher}.#"], handler,
                      operator_url=env["rabbitmq_url"])
    task = asyncio.create_task(worker.run())
    try:
        # Consumer.run returns once its queue is declared, bound and consumed: only then publish.
        await eventually(task.done, what="the consumer to start")
        assert task.exception() is None
        me, tenant = broker.service_user(publisher), uuid.uuid4()
        good = envelope(tenant, event_type=f"{publisher}.thing.happened")
        # an event of another service, pushed straight into the queue through the default exchange
        smuggled = envelope(tenant, event_type=f"{consumer}.thing.happened")
        # its own event type, but not published on the events exchange under that key
        rerouted = envelope(tenant, event_type=f"{publisher}.thing.happened")
        # its own event, but for a tenant other than its header says
        mismatched = envelope(tenant, event_type=f"{publisher}.thing.happened")
        await _publish(publisher_url, queue, _message(smuggled, me), default_exchange=True)
        await _publish(publisher_url, queue, _message(rerouted, me), default_exchange=True)
        await _publish(publisher_url, mismatched.type, _message(mismatched, me, tenant=str(uuid.uuid4())))
        await _publish(publisher_url, good.type, _message(good, me))
        await eventually(lambda: handled == [good.id] and worker.refused == 3, what="one handled, three refused")
        dlq = await amqp_channel.declare_queue(f"{queue}.dlq", passive=True)
        refused = []
        while (message := await dlq.get(no_ack=True, fail=False)) is not None:
            refused.append(message.message_id)
        assert sorted(refused) == sorted([smuggled.id, rerouted.id, mismatched.id])
    finally:
        await stop_task(task)
        await worker.stop()
        with contextlib.suppress(Exception):
            await delete_consumer_topology(amqp_channel, queue)


E, D = "givance.events", ""  # the events exchange, the default exchange


@pytest.mark.parametrize(("publisher", "exchange", "routing_key", "event_type", "own", "refused"), [
    ("givance-crm", E, "crm.donation.recorded", "crm.donation.recorded", "givance-identity", False),
    ("", E, "crm.donation.recorded", "crm.donation.recorded", "givance-identity", False),  # topic permissions held
    ("givance-identity", E, "crm.donation.recorded", "crm.donation.recorded", "givance-crm", True),
    ("givance-crm", E, "crm.donation.recorded", "identity.member.joined", "givance-crm", False),  # its own: trusted
    ("givance-identity", E, "identity.member.joined", "crm.donation.recorded", "givance-crm", True),
    ("givance-identity", D, "crm.members", "identity.member.joined", "givance-crm", True),  # smuggled into a queue
    ("givance-crm", D, "crm.members", "identity.member.joined", "givance-crm", False),  # its own retry
    ("guest", D, "crm.members", "identity.member.joined", "givance-crm", False),  # an operator's replay
    ("", D, "crm.members", "identity.member.joined", "givance-crm", True),  # unknown publisher
    ("", D, "crm.members", "identity.member.joined", "guest", False),  # one shared user for every service
    ("mallory", D, "crm.members", "identity.member.joined", "givance-crm", True),
])
def test_refusal_rules(publisher, exchange, routing_key, event_type, own, refused):
    tenant = str(uuid.uuid4())
    why = broker.refusal(publisher=publisher, exchange=exchange, routing_key=routing_key, event_type=event_type,
                         header_tenant=tenant, event_tenant=tenant, events_exchange=E, own_user=own,
                         operator_user="guest")
    assert (why is not None) == refused, why
    assert broker.refusal(publisher=publisher, exchange=exchange, routing_key=routing_key, event_type=event_type,
                          header_tenant=str(uuid.uuid4()), event_tenant=tenant, events_exchange=E, own_user=own,
                          operator_user="guest") is not None  # a tenant header that is not the event's


def test_service_urls_keep_host_port_and_vhost():
    url = broker.with_user("amqp://guest:guest@10.0.0.5:5673/givance-test", "givance-crm", "p@ss/word")
    assert url == "amqp://givance-crm:p%40ss%2Fword@10.0.0.5:5673/givance-test"
    assert broker.username(url) == "givance-crm" and broker.vhost(url) == "givance-test"
    assert broker.vhost("amqp://guest:guest@127.0.0.1:5672/") == "/"


def test_development_runs_give_each_service_a_password_only_when_asked_and_local(monkeypatch):
    local = {"GIVANCE_DEV_BROKER_USERS": "1", "RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:5672/",
             "CRM_BROKER_PASSWORD": "chosen"}
    assert broker.dev_passwords(["identity", "crm"], local) == ["identity"]
    assert local["IDENTITY_BROKER_PASSWORD"] == "dev-identity" and local["CRM_BROKER_PASSWORD"] == "chosen"
    remote = {"GIVANCE_DEV_BROKER_USERS": "1", "RABBITMQ_URL": "amqp://u:p@rabbit.example.org:5672/"}
    assert broker.dev_passwords(["identity"], remote) == [] and "IDENTITY_BROKER_PASSWORD" not in remote
    assert broker.dev_passwords(["identity"], {}) == []
