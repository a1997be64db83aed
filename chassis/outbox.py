"""The outbox relay: publishes committed outbox rows to RabbitMQ with publisher confirms.

Woken by LISTEN/NOTIFY, polling as a fallback. Each batch is claimed with
FOR UPDATE SKIP LOCKED under a transaction-level advisory lock, so one relay of a schema
publishes at a time and events leave in commit order (hence in order per aggregate).
Rows are marked sent only after the broker confirmed every message of the batch; a nack,
a timeout or a lost connection rolls the claim back and the rows go again later. A crash
or an outage delays events, never loses them; a repeat is possible, and consumers'
inboxes make it harmless.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
import zlib

import aio_pika
import asyncpg
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection
from aiormq import spec

from chassis import broker, events, failpoints

log = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(
        self,
        dsn: str,
        schema: str,
        amqp_url: str,
        exchange: str,
        *,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        confirm_timeout: float = 5.0,
        retention_seconds: float = 3600.0,
        inbox_retention_seconds: float = 7 * 86400.0,
    ):
        self.dsn = dsn
        self.schema = schema
        self.amqp_url = amqp_url
        self.exchange_name = exchange
        # Sent rows are kept this long (to look at), then deleted: event payloads may carry
        # links and codes meant for a user, and the outbox must not keep them for ever.
        self.retention_seconds = retention_seconds
        # The consumers' inbox rows are kept far longer than any redelivery can come (a relay
        # that crashed between confirm and marking sent republishes within seconds; a broker
        # redelivers unacked messages on reconnect), then deleted, so the inbox does not grow for ever.
        self.inbox_retention_seconds = inbox_retention_seconds
        self._pruned_at = 0.0
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.confirm_timeout = confirm_timeout
        self._lock_key = zlib.crc32(f"givance.outbox.{schema}".encode())
        # Every message carries the publisher's broker user, which RabbitMQ checks: consumers know
        # who published it (chassis.broker).
        self._user_id = broker.username(amqp_url)
        self._wake = asyncio.Event()
        self._stopping = False
        self._db: asyncpg.Connection | None = None
        self._amqp: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self.published = 0
        self._finished = asyncio.Event()
        self._started = False

    # -- lifecycle -------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._run()
        finally:
            self._finished.set()

    async def _run(self) -> None:
        self._started = True
        backoff = 0.1
        while not self._stopping:
            try:
                await self._ensure_db()
                await self._ensure_broker()
                while not self._stopping:
                    sent = await self.publish_batch()
                    backoff = 0.1
                    if sent < self.batch_size:
                        await self._prune_if_due()
                        await self._sleep_until_woken()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure: keep the rows, retry later
                log.warning("outbox relay %s: %r; retrying in %.1fs", self.schema, exc, backoff)
                await self._close_broker()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def stop(self) -> None:
        """Let the batch in flight finish (what it sent is marked sent), then disconnect."""
        self._stopping = True
        self._wake.set()
        if self._started:
            try:
                await asyncio.wait_for(self._finished.wait(), timeout=self.confirm_timeout + 5)
            except TimeoutError:
                log.warning("outbox relay %s: a batch did not finish in time; its rows stay unsent", self.schema)
        await self._close_broker()
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def _sleep_until_woken(self) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)
        except TimeoutError:
            pass
        self._wake.clear()

    async def _ensure_db(self) -> None:
        if self._db is not None and not self._db.is_closed():
            return
        self._db = await asyncpg.connect(self.dsn, server_settings={"application_name": f"outbox-relay-{self.schema}"})
        await self._db.add_listener(events.outbox_channel(self.schema), lambda *_: self._wake.set())

    async def _ensure_broker(self) -> None:
        if self._exchange is not None and self._channel is not None and not self._channel.is_closed:
            return
        await self._close_broker()
        self._amqp = await aio_pika.connect(self.amqp_url, timeout=5)
        self._channel = await self._amqp.channel(publisher_confirms=True)
        self._exchange = await self._channel.declare_exchange(
            self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )

    async def _close_broker(self) -> None:
        conn, self._amqp, self._channel, self._exchange = self._amqp, None, None, None
        if conn is not None:
            try:
                await conn.close()
            except Exception:  # noqa: BLE001 - already broken
                pass

    async def _prune_if_due(self) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() - self._pruned_at >= 60:
            self._pruned_at = loop.time()
            await self.prune()

    async def prune(self) -> int:
        """Delete sent rows older than the retention, and inbox rows older than the inbox's.
        Returns how many outbox rows went."""
        assert self._db is not None
        status = await self._db.execute(
            f"DELETE FROM {self.schema}.outbox WHERE published_at < now() - make_interval(secs => $1)",
            self.retention_seconds,
        )
        await self._db.execute(
            f"DELETE FROM {self.schema}.inbox WHERE created_at < now() - make_interval(secs => $1)",
            self.inbox_retention_seconds,
        )
        return int(status.rsplit(" ", 1)[-1])

    # -- one batch ---------------------------------------------------------------------

    async def publish_batch(self) -> int:
        """Claim, publish and mark one batch. Returns how many rows were sent."""
        assert self._db is not None and self._exchange is not None
        async with self._db.transaction():
            if not await self._db.fetchval("SELECT pg_try_advisory_xact_lock($1)", self._lock_key):
                return 0  # another relay of this schema is publishing
            rows = await self._db.fetch(
                f"SELECT id, event_id, routing_key, body, headers FROM {self.schema}.outbox "
                "WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                self.batch_size,
            )
            if not rows:
                return 0
            # Publishing on one channel keeps the order; confirms arrive asynchronously.
            confirms = [asyncio.ensure_future(self._publish(*m)) for m in coalesce_audit(rows)]
            try:
                await asyncio.wait_for(asyncio.gather(*confirms), timeout=self.confirm_timeout + len(rows) / 200)
            except BaseException:
                for c in confirms:
                    c.cancel()
                await asyncio.gather(*confirms, return_exceptions=True)
                raise  # the transaction rolls back: every row of the batch stays unsent
            failpoints.hit(failpoints.RELAY_AFTER_CONFIRM)
            await self._db.execute(
                f"UPDATE {self.schema}.outbox SET published_at = now() WHERE id = ANY($1::bigint[])",
                [r["id"] for r in rows],
            )
        self.published += len(rows)
        return len(rows)

    async def _publish(self, routing_key: str, body: bytes, headers: dict, message_id: str) -> None:
        assert self._exchange is not None
        message = aio_pika.Message(
            body=body,
            headers=headers,
            message_id=message_id,
            type=routing_key,
            user_id=self._user_id,
            content_type=events.CONTENT_TYPE,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        confirmation = await self._exchange.publish(
            message, routing_key=routing_key, mandatory=False, timeout=None  # the batch has one deadline
        )
        # aio-pika raises DeliveryError on basic.nack; anything but an ack is a failure.
        if not isinstance(confirmation, spec.Basic.Ack):
            raise RuntimeError(f"publish of {message_id} was not confirmed: {confirmation!r}")


AUDIT_SUFFIX = ".audit.recorded"


def coalesce_audit(rows: list[asyncpg.Record]) -> list[tuple[str, bytes, dict, str]]:
    """The messages of one claimed batch: (routing key, body, headers, message id).

    Domain events go one message each, in outbox order. Audit entries (`<service>.audit.recorded`,
    one per audited write, written in the write's transaction) are numerous and need no order:
    the batch's entries of one tenant travel as one `<service>.audit.batch_recorded` message,
    each entry keeping its own id, so the audit trail stores each entry once however the
    entries were grouped (a batch re-sent after a failure may be grouped differently).
    """
    from givance.events.v1 import audit_events_pb2

    messages: list[tuple[str, bytes, dict, str]] = []
    audits: dict[tuple[str, str], list[tuple[asyncpg.Record, audit_events_pb2.AuditRecordedEvent]]] = {}
    for row in rows:
        headers = json.loads(row["headers"]) if row["headers"] else {}
        if not row["routing_key"].endswith(AUDIT_SUFFIX):
            messages.append((row["routing_key"], bytes(row["body"]), headers, str(row["event_id"])))
            continue
        env = events.parse(bytes(row["body"]))
        entry = events.unpack(env, audit_events_pb2.AuditRecordedEvent)
        entry.entry_id = env.id
        if not entry.HasField("occur_time"):
            entry.occur_time.CopyFrom(env.occur_time)
        service = row["routing_key"][: -len(AUDIT_SUFFIX)]
        audits.setdefault((env.tenant_id, service), []).append((row, entry))
    for (tenant, service), group in audits.items():
        ids = [str(r["event_id"]) for r, _ in group]
        batch_id = str(uuid.uuid5(uuid.NAMESPACE_URL, "givance-audit:" + ",".join(ids)))
        env = events.envelope(f"{service}.audit.batch_recorded",
                              audit_events_pb2.AuditBatchRecordedEvent(entries=[e for _, e in group]),
                              uuid.UUID(tenant), "audit", tenant, event_id=batch_id)
        headers = json.loads(group[0][0]["headers"]) if group[0][0]["headers"] else {}
        messages.append((env.type, env.SerializeToString(), headers, batch_id))
    return messages
