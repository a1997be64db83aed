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
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from givance.events.v1 import event_pb2
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from sqlalchemy import text

from chassis import events
from chassis.db import Database, UnitOfWork

log = logging.getLogger(__name__)
tracer = trace.get_tracer("givance.consumer")

Handler = Callable[[UnitOfWork, event_pb2.Event], Awaitable[None]]
DEFAULT_MAX_ATTEMPTS = 5


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
                           bindings: Sequence[str], max_attempts: int) -> aio_pika.abc.AbstractQueue:
    """Declare the exchange, the quorum queue with its retry and dead-letter queues."""
    ex = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    dlx = await channel.declare_exchange(events.DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True)
    dlq = await channel.declare_queue(f"{queue}.dlq", durable=True, arguments={"x-queue-type": "quorum"})
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
        self._conn: aio_pika.abc.AbstractRobustConnection | None = None
        self._channel: aio_pika.abc.AbstractChannel | None = None
        self.handled = 0

    async def start(self) -> None:
        self._conn = await aio_pika.connect_robust(self.amqp_url, timeout=5)
        self._channel = await self._conn.channel(publisher_confirms=True)
        await self._channel.set_qos(prefetch_count=self.prefetch)
        q = await declare_topology(self._channel, self.exchange, self.queue_name, self.bindings, self.max_attempts)
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
        try:
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
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the handler's failure: retry, then dead-letter
            await self._retry_or_dead_letter(message, exc)
            return
        await message.ack()
        self.handled += 1

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
        await self._republish(message, f"{self.queue_name}.dlq", attempts, reason=reason)

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
            content_type=message.content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            expiration=expiration,
        )
        # Confirmed before the original is acked: a crash in between redelivers, never loses.
        await self._channel.default_exchange.publish(copy, routing_key=queue)
        await message.ack()
