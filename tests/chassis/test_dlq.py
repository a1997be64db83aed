"""python -m chassis.dlq against the real RabbitMQ: a dead letter is listed, shown and replayed,
and the replayed event is handled once by the consumer whose handler has since been fixed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from chassis import dlq, events
from tests.chassis.support import amqp_message, envelope
from tests.chassis.test_consumer import Setup, handled_rows, inbox_count, queue_depth
from tests.helpers import eventually


def run_dlq(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chassis.dlq", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "RABBITMQ_URL": env["rabbitmq_url"]}, check=False)


@pytest.mark.server_errors("dead-lettering")
async def test_dead_letters_are_listed_shown_and_replayed_once(event_schema, env, amqp_channel):
    s = Setup(event_schema, env, amqp_channel)
    consumer = await s.start(max_attempts=2, backoff_base=0.01, prefetch=4)
    tenant = uuid.uuid4()
    try:
        poison = [envelope(tenant, "poison", aggregate_id=f"thing-{i}") for i in range(2)]
        for event in poison:
            await s.publish(amqp_message(event))
        await eventually(lambda: queue_depth(amqp_channel, f"{s.queue}.dlq"), what="dead letters")
        await eventually(lambda: len(s.calls) == 4, what="both poison messages tried twice")

        listed = run_dlq(env, "list", s.queue)
        assert listed.returncode == 0, listed.stderr
        lines = listed.stdout.splitlines()
        assert sorted(line.split()[0] for line in lines) == sorted(e.id for e in poison)
        assert all("attempts=2" in line and "cannot be handled" in line for line in lines)
        assert await queue_depth(amqp_channel, f"{s.queue}.dlq") == 2, "listing consumed dead letters"

        shown = run_dlq(env, "show", s.queue, poison[0].id)
        assert shown.returncode == 0, shown.stderr
        detail = json.loads(shown.stdout)
        assert detail["tenant"] == str(tenant) and detail["attempts"] == 2
        assert detail["envelope"]["id"] == poison[0].id
        assert detail["envelope"]["payload"]["value"] == "poison"
        assert run_dlq(env, "show", s.queue, str(uuid.uuid4())).returncode == 1

        # The handler is fixed (it fails only on "poison"): re-label the payload's meaning by
        # giving the consumer a handler that accepts everything, then replay one, then the rest.
        s.consumer.handler = _accept_all(s)
        replayed = run_dlq(env, "replay", s.queue, poison[0].id)
        assert replayed.returncode == 0, replayed.stderr
        await eventually(lambda: consumer.handled == 1, what="the replayed message handled")
        assert [d.message_id for d in await dlq.dead_letters(env["rabbitmq_url"], s.queue)] == [poison[1].id]

        assert await dlq.replay(env["rabbitmq_url"], s.queue) == [poison[1].id]
        await eventually(lambda: consumer.handled == 2, what="the second replayed message handled")
        for event in poison:
            assert len(await handled_rows(event_schema, event.id)) == 1
            assert await inbox_count(event_schema, s.queue, event.id) == 1
        for name in (s.queue, f"{s.queue}.retry", f"{s.queue}.dlq"):
            assert await queue_depth(amqp_channel, name) == 0, name
        # A replay of the same event again (say, from a backup) is dropped by the inbox.
        await s.publish(amqp_message(poison[0]))
        await eventually(lambda: consumer.handled == 3, what="the repeat acked")
        assert len(await handled_rows(event_schema, poison[0].id)) == 1
    finally:
        await s.close()


def _accept_all(s: Setup):
    from sqlalchemy import text

    async def handle(uow, event) -> None:
        s.calls.append(event.id)
        await uow.conn.execute(
            text(f"INSERT INTO {s.event_schema.name}.handled (event_id, consumer, tenant) "
                 "VALUES (:e, :c, current_setting('app.tenant_id', true))"), {"e": event.id, "c": s.queue})

    return handle


def test_replay_needs_ids_or_all(env):
    result = run_dlq(env, "replay", "nothing.here")
    assert result.returncode == 2 and "--all" in result.stderr
    assert events.ATTEMPTS_HEADER == "x-givance-attempts"


@pytest.mark.server_errors("dead-lettering", "is full")
async def test_a_full_dlq_holds_the_next_dead_letter_instead_of_dropping_it(event_schema, env, amqp_channel):
    s = Setup(event_schema, env, amqp_channel)
    consumer = await s.start(max_attempts=1, backoff_base=0.01, prefetch=4, dlq_max_length=1,
                             outage_backoff=(0.02, 0.1))
    try:
        # A quorum queue's bound is checked before each enqueue, so a bound of 1 takes two.
        first, second, third = (envelope(uuid.uuid4(), "poison", aggregate_id=f"p-{i}") for i in range(3))
        for event in (first, second):
            await s.publish(amqp_message(event))
        await eventually(lambda: _dead_are(env, s, {first.id, second.id}), what="two dead letters")
        await s.publish(amqp_message(third))
        await eventually(lambda: consumer.dlq_full_waits >= 2, what="the third to be held at the bound")
        assert await _dead_ids(env, s) == {first.id, second.id}
        # Room again (an operator took the dead letters off): the held one goes to the DLQ, nothing
        # was lost. Taken one by one and acked: a listing's unacked copies may still be on their way
        # back into the queue, which a purge would miss.
        dead = await amqp_channel.declare_queue(f"{s.queue}.dlq", passive=True)
        taken: list[str] = []

        async def take() -> bool:
            message = await dead.get(no_ack=True, fail=False)
            if message is not None:
                taken.append(message.message_id)
            return third.id in taken

        await eventually(take, what="the held dead letter in the DLQ")
        assert sorted(taken) == sorted([first.id, second.id, third.id])
    finally:
        await s.close()


async def _dead_ids(env, s: Setup) -> set[str]:
    return {d.message_id for d in await dlq.dead_letters(env["rabbitmq_url"], s.queue)}


async def _dead_are(env, s: Setup, expected: set[str]) -> bool:
    return await _dead_ids(env, s) == expected


async def test_a_dlq_declared_before_the_bound_is_kept_as_it_is(env, amqp_channel):
    """Upgrading: RabbitMQ refuses to change a queue's arguments, so an unbounded DLQ of an
    earlier release stays (with a warning naming the policy to set) and the consumer declares."""
    from chassis.consumer import declare_topology
    from tests.chassis.support import delete_consumer_topology, unique

    queue, exchange = unique("dlqtest.q"), unique("dlqtest")
    await amqp_channel.declare_queue(f"{queue}.dlq", durable=True, arguments={"x-queue-type": "quorum"})
    try:
        q = await declare_topology(amqp_channel, exchange, queue, ["test.#"], 3)
        assert q.name == queue
        assert await queue_depth(amqp_channel, f"{queue}.dlq") == 0
    finally:
        await delete_consumer_topology(amqp_channel, queue)
        await amqp_channel.exchange_delete(exchange)
