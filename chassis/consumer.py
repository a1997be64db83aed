"""The event consumer: durable quorum queue, inbox, ack after commit, retries, dead letters.

For each message: parse the envelope, open a unit of work for the event's tenant, insert
(consumer, event id) into the inbox (a repeat inserts nothing and is acked unhandled),
run the handler in that same transaction, commit, then ack. A handler failure republishes
the message to `<queue>.retry` with an exponential delay (per-message TTL; the retry queue
dead-letters back into the main queue) until `max_attempts`, then to `<queue>.dlq`. Each
republish waits for its confirm before the original is acked, so nothing is lost; a poison
message leaves the queue after its attempts and never blocks it. The quorum queue's own
delivery limit and dead-letter exchange (set explicitly; RabbitMQ 3.x has no default)
catch a message that crashes its consumer over and over.

A failure of the infrastructure rather than the handler (the database or broker unreachable,
see chassis.faults) is not poison: the message is held and tried again with back-off, without
counting an attempt, until the infrastructure answers or the consumer stops (unacked, the
broker then redelivers it). Dead letters are listed, shown and replayed with chassis.dlq.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from aiormq import spec
from givance.events.v1 import event_pb2
from opentelemetry import context as otel_context
from opentelemetry import metrics, propagate, trace
from sqlalchemy import text

from chassis import broker, events, failpoints, faults
from chassis.db import Database, UnitOfWork

log = logging.getLogger(__name__)
tracer = trace.get_tracer("givance.consumer")
_meter = metrics.get_meter("givance.consumer")
# Alert on any increase: a dead letter is an event some purpose did not handle.
DEAD_LETTERED = _meter.create_counter("givance.consumer.dead_lettered", description="messages sent to a DLQ")
OUTAGE_WAITS = _meter.create_counter("givance.consumer.outage_waits",
                                     description="handler runs deferred because the database or broker was down")

Handler = Callable[[UnitOfWork, event_pb2.Event], Awaitable[None]]
DEFAULT_MAX_ATTEMPTS = 5
DLQ_MAX_LENGTH = 100_000  # dead letters kept per consumer purpose; beyond it the consumer waits


@dataclass(frozen=True)
class Subscription:
    """One consumer purpose: its durable queue, the routing keys it binds, its handler."""

    queue: str
    bindings: Sequence[str]
    handler: Handler
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    # Messages handled at once (each in its own transaction, so its own pooled connection):
    # 1 for heavy handlers that would otherwise starve the service's requests of connections.
    prefetch: int = 32


async def declare_subscriptions(amqp_url: str, exchange: str, subscriptions: Sequence[Subscription]) -> None:
    """Declare every queue and binding up front (migrations, test setup): an event published
    before its consumer first starts then waits in the queue instead of being dropped."""
    conn = await aio_pika.connect(amqp_url, timeout=10)
    try:
        channel = await conn.channel()
        for sub in subscriptions:
            await declare_topology(channel, exchange, sub.queue, sub.bindings, sub.max_attempts)
    finally:
        await conn.close()


async def declare_topology(channel: aio_pika.abc.AbstractChannel, exchange: str, queue: str,
                           bindings: Sequence[str], max_attempts: int,
                           dlq_max_length: int = DLQ_MAX_LENGTH) -> aio_pika.abc.AbstractQueue:
    """Declare the exchange, the quorum queue with its retry and dead-letter queues."""
    ex = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    dlx = await channel.declare_exchange(events.DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True)
    dlq = await _declare_dlq(channel, f"{queue}.dlq", dlq_max_length)
    await dlq.bind(dlx, routing_key=queue)
    await channel.declare_queue(
        f"{queue}.retry",
        durable=True,
        arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": queue},
    )
    q = await channel.declare_queue(
        queue,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": max_attempts,
            "x-dead-letter-exchange": events.DEAD_LETTER_EXCHANGE,
            "x-dead-letter-routing-key": queue,
        },
    )
    for key in bindings:
        await q.bind(ex, routing_key=key)
    return q


async def _declare_dlq(channel: aio_pika.abc.AbstractChannel, name: str, max_length: int) -> aio_pika.abc.AbstractQueue:
    """The dead-letter queue, bounded: when full it refuses new dead letters (reject-publish)
    rather than dropping old ones, and the consumer holds the message until there is room.
    A DLQ declared before the bound existed keeps its arguments (RabbitMQ refuses to change them);
    bound it with a policy: rabbitmqctl set_policy --apply-to queues givance-dlq '\\.dlq$'
    '{"max-length": 100000, "overflow": "reject-publish"}'."""
    try:
        return await channel.declare_queue(name, durable=True, arguments={
            "x-queue-type": "quorum", "x-max-length": max_length, "x-overflow": "reject-publish"})
    except aio_pika.exceptions.ChannelPreconditionFailed:
        await channel.reopen()
        log.warning("%s was declared without a length bound; set a policy (see chassis.consumer)", name)
        return await channel.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})


class RefusedByQueue(Exception):
    """The broker nacked a republish: the target queue is at its bound (reject-publish)."""


class Consumer:
    def __init__(
        self,
        db: Database,
        amqp_url: str,
        exchange: str,
        queue: str,
        bindings: Sequence[str],
        handler: Handler,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        backoff_base: float = 0.5,
        prefetch: int = 32,
        outage_backoff: tuple[float, float] = (0.2, 5.0),
        dlq_max_length: int = DLQ_MAX_LENGTH,
        operator_url: str | None = None,
    ):
        self.db = db
        self.amqp_url = amqp_url
        self.exchange = exchange
        self.queue_name = queue
        self.bindings = list(bindings)
        self.handler = handler
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.prefetch = prefetch
        self.outage_backoff = outage_backoff
        # Whose messages need no check (chassis.broker): this consumer's own user (its retry copies)
        # and the operator's (RABBITMQ_URL's: replays), the same user when no per-service one is set.
        self.own_user = broker.username(amqp_url)
        self.operator_user = broker.username(operator_url or amqp_url)
        self.refused = 0  # events refused: their publisher may not speak for them
        self.outage_waits = 0  # handler runs deferred by an outage (not attempts)
        self.duplicates = 0  # deliveries of an event this purpose had handled already
        self.dlq_full_waits = 0  # dead letters held because the DLQ was at its bound
        self.dlq_max_length = dlq_max_length
        self._conn: aio_pika.abc.AbstractRobustConnection | None = None
        self._channel: aio_pika.abc.AbstractChannel | None = None
        self.handled = 0

    async def start(self) -> None:
        self._conn = await aio_pika.connect_robust(self.amqp_url, timeout=5)
        self._channel = await self._conn.channel(publisher_confirms=True)
        await self._channel.set_qos(prefetch_count=self.prefetch)
        q = await declare_topology(self._channel, self.exchange, self.queue_name, self.bindings, self.max_attempts,
                                   self.dlq_max_length)
        await q.consume(self._on_message)

    async def run(self) -> None:
        """Start, retrying with back-off while the broker is unreachable; once connected,
        the robust connection reconnects and resumes consuming by itself."""
        delay = 0.2
        while True:
            try:
                await self.start()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - broker down at start: keep trying
                log.warning("consumer %s: cannot start (%s); retrying in %.1fs", self.queue_name, exc, delay)
                await self.stop()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def stop(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        headers = {k: str(v) for k, v in (message.headers or {}).items()}
        token = otel_context.attach(propagate.extract(headers))
        try:
            with tracer.start_as_current_span(f"consume {message.routing_key}", kind=trace.SpanKind.CONSUMER):
                await self._process(message)
        finally:
            otel_context.detach(token)

    async def _process(self, message: AbstractIncomingMessage) -> None:
        try:
            env = events.parse(message.body)
            tenant = uuid.UUID(env.tenant_id)
            uuid.UUID(env.id)
        except Exception as exc:  # noqa: BLE001 - unparseable: no retry can help
            log.error("consumer %s: undecodable message %s: %s", self.queue_name, message.message_id, exc)
            await self._dead_letter(message, f"undecodable: {exc}")
            return
        refused = broker.refusal(publisher=message.user_id or "", exchange=message.exchange or "",
                                 routing_key=message.routing_key or "", event_type=env.type,
                                 header_tenant=str((message.headers or {}).get(events.TENANT_HEADER, "")),
                                 event_tenant=env.tenant_id, events_exchange=self.exchange,
                                 own_user=self.own_user, operator_user=self.operator_user)
        if refused is not None:
            self.refused += 1
            log.error("consumer %s: refused event %s: %s", self.queue_name, message.message_id, refused)
            await self._dead_letter(message, f"refused: {refused}")
            return
        delay, longest = self.outage_backoff
        while True:
            try:
                await self._handle(tenant, env)
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - an outage waits; the handler's own failure is retried
                if not faults.is_transient(exc):
                    await self._retry_or_dead_letter(message, exc)
                    return
                if self._conn is None:  # stopping: leave it unacked, the broker redelivers it
                    return
                self.outage_waits += 1
                OUTAGE_WAITS.add(1, {"queue": self.queue_name})
                log.warning("consumer %s: %s waits for the infrastructure (%s); retrying in %.1fs",
                            self.queue_name, message.message_id, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, longest)
        failpoints.hit(failpoints.CONSUMER_AFTER_COMMIT)
        try:
            await message.ack()
        except Exception as exc:
            if not faults.is_transient(exc):
                raise
            # Committed with its inbox row: the redelivery after the reconnect is acked unhandled.
            log.info("consumer %s: ack of %s lost with the connection (%s)", self.queue_name, message.message_id, exc)
            return
        self.handled += 1

    async def _handle(self, tenant: uuid.UUID, env: event_pb2.Event) -> None:
        """The inbox row and the handler, in one transaction: a repeat is a no-op."""
        async with self.db.unit_of_work(tenant) as uow:
            inserted = await uow.conn.execute(
                text(
                    f"INSERT INTO {self.db.schema}.inbox (consumer, event_id) VALUES (:c, :e) "
                    "ON CONFLICT DO NOTHING"
                ),
                {"c": self.queue_name, "e": env.id},
            )
            if inserted.rowcount == 1:
                await self.handler(uow, env)
            else:
                self.duplicates += 1
                log.info("consumer %s: event %s already handled; duplicate suppressed", self.queue_name, env.id)

    async def _retry_or_dead_letter(self, message: AbstractIncomingMessage, exc: Exception) -> None:
        attempts = int((message.headers or {}).get(events.ATTEMPTS_HEADER, 0)) + 1
        if attempts >= self.max_attempts:
            log.error("consumer %s: %s failed %d times, dead-lettering: %s",
                      self.queue_name, message.message_id, attempts, exc)
            await self._dead_letter(message, repr(exc), attempts)
            return
        delay = self.backoff_base * (2 ** (attempts - 1))
        log.warning("consumer %s: %s failed (attempt %d), retrying in %.2fs: %s",
                    self.queue_name, message.message_id, attempts, delay, exc)
        await self._republish(message, f"{self.queue_name}.retry", attempts, expiration=delay)

    async def _dead_letter(self, message: AbstractIncomingMessage, reason: str, attempts: int = 0) -> None:
        DEAD_LETTERED.add(1, {"queue": self.queue_name})
        delay, longest = self.outage_backoff
        while True:
            try:
                await self._republish(message, f"{self.queue_name}.dlq", attempts, reason=reason)
                return
            except (RefusedByQueue, aio_pika.exceptions.DeliveryError):  # the DLQ is full: nothing is dropped
                if self._conn is None:
                    return  # stopping: unacked, the broker redelivers it
                self.dlq_full_waits += 1
                log.error("consumer %s: %s.dlq is full; holding %s until there is room (list and replay it: "
                          "python -m chassis.dlq list %s)", self.queue_name, self.queue_name, message.message_id,
                          self.queue_name)
                await asyncio.sleep(delay)
                delay = min(delay * 2, longest)

    async def _republish(self, message: AbstractIncomingMessage, queue: str, attempts: int,
                         *, expiration: float | None = None, reason: str | None = None) -> None:
        assert self._channel is not None
        headers = dict(message.headers or {})
        headers[events.ATTEMPTS_HEADER] = attempts
        if reason:
            headers["x-givance-error"] = reason[:500]
        copy = aio_pika.Message(
            body=message.body,
            headers=headers,
            message_id=message.message_id,
            type=message.type,
            user_id=self.own_user,  # RabbitMQ accepts only the connection's own user
            content_type=message.content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            expiration=expiration,
        )
        # Confirmed before the original is acked: a crash in between redelivers, never loses.
        confirmation = await self._channel.default_exchange.publish(copy, routing_key=queue)
        if not isinstance(confirmation, spec.Basic.Ack):  # a nack: the queue refused it (full)
            raise RefusedByQueue(f"{queue} refused {message.message_id}: {confirmation!r}")
        await message.ack()
