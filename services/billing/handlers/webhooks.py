"""A gateway's webhook: verified with that organization's endpoint secret, stored raw once by
event id (a replay changes nothing), processed in the same transaction through the outbox.

Events that arrive together for one organization share a transaction (one statement stores
them all, one commit), and each request is answered only once that transaction committed. When
none of them is a gift or a refund, that statement is the whole transaction (one round trip).
Out of order: a refund whose payment is not known yet waits (stored as waiting) and is applied
when the payment's event arrives."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from givance.events.v1 import billing_events_pb2
from google.protobuf import timestamp_pb2

from chassis.convert import money
from chassis.crypto import Keyring
from chassis.db import Connection, Database, UnitOfWork
from services.billing.domain import gateways as rules
from services.billing.domain import razorpay
from services.billing.handlers.gateways import aad
from services.billing.providers import razorpay_gateway, stripe_gateway
from services.billing.store import gateways as store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    status: int  # the HTTP status to answer
    detail: str


NOT_FOUND = Outcome(404, "no such endpoint")
REPLAYED = "replayed: nothing done"


class Inactive(Exception):
    """The endpoint's config was deleted or deactivated: nothing is stored."""


def _ids(org: str, config: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    try:
        return uuid.UUID(org), uuid.UUID(config)
    except ValueError:
        return None


def _ts(seconds: int) -> timestamp_pb2.Timestamp:
    t = timestamp_pb2.Timestamp()
    t.FromDatetime(datetime.fromtimestamp(seconds, UTC) if seconds else datetime.now(UTC))
    return t


@dataclass
class Received:
    """A verified event, classified."""

    org: uuid.UUID
    config_id: uuid.UUID
    gateway: str
    event: dict
    raw: str
    gift: rules.Gift | None = None
    refund: rules.GiftRefund | None = None
    future: asyncio.Future | None = field(default=None, repr=False)

    @property
    def payment_id(self) -> str | None:
        return self.gift.payment_id if self.gift else self.refund.payment_id if self.refund else None

    @property
    def status(self) -> str:
        return "processed" if self.gift or self.refund else "ignored"


# each gateway's reading of its events: (gift_of, refund_of)
READERS = {rules.STRIPE: (rules.gift_of, rules.refund_of), razorpay.RAZORPAY: (razorpay.gift_of, razorpay.refund_of)}


def classify(org: uuid.UUID, config_id: uuid.UUID, gateway: str, event: dict, raw: str) -> Received:
    item = Received(org, config_id, gateway, event, raw)
    gift_of, refund_of = READERS[gateway]
    try:
        item.gift, item.refund = gift_of(event), refund_of(event)
    except (KeyError, TypeError, ValueError):
        log.info("webhook event %s (%s): not a gift or refund it can read; stored only", event["id"], event["type"])
    return item


class WebhookReceiver:
    """Receives one gateway's events for every organization. Each endpoint's secret is opened
    once and kept for `secret_ttl` seconds; whether the config is still active is checked by the
    very statement that stores the event, so a deleted config stops at once."""

    def __init__(self, db: Database, keyring: Keyring, tolerance: int, secret_ttl: float = 60.0):
        self.db, self.keyring, self.tolerance, self.secret_ttl = db, keyring, tolerance, secret_ttl
        self._secrets: dict[tuple[uuid.UUID, uuid.UUID], tuple[str, str, float]] = {}
        self._commits = GroupCommit(db)

    async def _secret(self, org: uuid.UUID, config_id: uuid.UUID, gateway: str) -> str | None:
        """The endpoint's secret, when the config is live and of that gateway."""
        now = time.monotonic()
        cached = self._secrets.get((org, config_id))
        if cached is not None and cached[2] > now:
            return cached[0] if cached[1] == gateway else None
        async with self.db.unit_of_work(org) as uow:
            found = await store.webhook_secret(uow.conn, org, config_id)
        if found is None:
            self._secrets.pop((org, config_id), None)
            return None
        secret = self.keyring.open(found[0], aad(config_id, "webhook_secret")).decode()
        if len(self._secrets) > 10_000:
            self._secrets.clear()
        self._secrets[(org, config_id)] = (secret, found[1], now + self.secret_ttl)
        return secret if found[1] == gateway else None

    async def stripe(self, org_id: str, config_id: str, payload: bytes, signature: str) -> Outcome:
        ids = _ids(org_id, config_id)
        if ids is None:
            return NOT_FOUND
        org, cid = ids
        secret = await self._secret(org, cid, rules.STRIPE)
        if secret is None:
            return NOT_FOUND
        try:
            event = stripe_gateway.verify(payload, signature, secret, self.tolerance)
        except stripe_gateway.InvalidSignature as exc:
            return Outcome(400, f"signature: {exc}")
        except ValueError:
            return Outcome(400, "the body is not a Stripe event")
        if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not isinstance(event.get("type"),
                                                                                                 str):
            return Outcome(400, "the body is not a Stripe event")
        try:
            detail = await self._commits.submit(classify(org, cid, rules.STRIPE, event, payload.decode("utf-8")))
        except Inactive:
            self._secrets.pop((org, cid), None)
            return NOT_FOUND
        return Outcome(200, detail)

    async def razorpay(self, org_id: str, config_id: str, payload: bytes, signature: str, event_id: str) -> Outcome:
        """Razorpay's event: X-Razorpay-Signature verified with the endpoint's secret; its id from
        X-Razorpay-Event-Id; stored under {"id", "type"} like Stripe's, its body kept raw."""
        ids = _ids(org_id, config_id)
        if ids is None:
            return NOT_FOUND
        org, cid = ids
        secret = await self._secret(org, cid, razorpay.RAZORPAY)
        if secret is None:
            return NOT_FOUND
        try:
            event = razorpay_gateway.verify(payload, signature, secret)
        except stripe_gateway.InvalidSignature as exc:
            return Outcome(400, f"signature: {exc}")
        except ValueError:
            return Outcome(400, "the body is not a Razorpay event")
        if not isinstance(event, dict) or not isinstance(event.get("event"), str):
            return Outcome(400, "the body is not a Razorpay event")
        event["id"], event["type"] = razorpay.event_id(event_id, payload), event["event"]
        try:
            detail = await self._commits.submit(classify(org, cid, razorpay.RAZORPAY, event, payload.decode("utf-8")))
        except Inactive:
            self._secrets.pop((org, cid), None)
            return NOT_FOUND
        return Outcome(200, detail)


class GroupCommit:
    """Verified events wait here for their transaction: those that arrive together for one
    organization are stored and processed in one transaction (one commit, one WAL flush), and each
    request is answered only once it committed. When the batch fails it is rolled back and each
    event is done again alone, so one event's failure is only its own."""

    def __init__(self, db: Database, max_batch: int = 128, workers: int = 2):
        self.db, self.max_batch, self.workers = db, max_batch, workers
        self._queue: deque[Received] = deque()
        self._running = 0
        self._tasks: set[asyncio.Task] = set()

    async def submit(self, item: Received) -> str:
        loop = asyncio.get_running_loop()
        item.future = loop.create_future()
        self._queue.append(item)
        if self._running < self.workers:
            self._running += 1
            task = loop.create_task(self._work())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await item.future

    async def _work(self) -> None:
        try:
            while self._queue:
                first = self._queue.popleft()
                batch = [first]
                for queued in list(self._queue):  # the same organization's, up to max_batch, in arrival order
                    if len(batch) >= self.max_batch:
                        break
                    if queued.org == first.org:
                        batch.append(queued)
                        self._queue.remove(queued)
                try:
                    await self._commit(batch)
                except BaseException as exc:  # cancelled (shutdown): no request waits forever
                    for p in batch:
                        _settle(p, error=exc)
                    raise
        finally:
            self._running -= 1

    async def _commit(self, batch: list[Received]) -> None:
        if not any(item.gift or item.refund for item in batch):
            # Nothing to act on (the common case): one statement stores them, in a transaction of
            # its own, committed before it answers: one round trip instead of BEGIN, INSERT, COMMIT.
            try:
                async with self.db.alone() as conn:
                    outcomes = await process(conn, None, batch)
            except Exception:  # done again below in a unit of work (a dead pooled connection, ...)
                log.info("storing %d webhook events alone failed; again in a unit of work", len(batch),
                         exc_info=True)
            else:
                for item, outcome in zip(batch, outcomes, strict=True):
                    _settle(item, *outcome)
                return
        try:
            async with self.db.unit_of_work(batch[0].org) as uow:
                outcomes = await process(uow.conn, uow, batch)
        except Exception as exc:  # noqa: BLE001 - one by one below, or the one event's own failure
            if len(batch) == 1:
                _settle(batch[0], error=exc)
                return
        else:
            for item, outcome in zip(batch, outcomes, strict=True):
                _settle(item, *outcome)
            return
        for item in batch:
            await self._commit([item])


def _settle(item: Received, detail: str | None = None, error: BaseException | None = None) -> None:
    if item.future is None or item.future.done():  # the request went away: its event is stored all the same
        return
    if error is not None:
        item.future.set_exception(error)
    else:
        item.future.set_result(detail)


async def process(conn: Connection, uow: UnitOfWork | None, batch: list[Received],
                  ) -> list[tuple[str | None, BaseException | None]]:
    """Stores the batch's events (one statement), then acts on each stored one in arrival order, in
    `uow` (None: no event of the batch asks for more than being stored); (detail, None) or
    (None, Inactive) per event."""
    org = batch[0].org
    first: dict[tuple[str, str], Received] = {}
    for item in batch:
        first.setdefault((item.gateway, item.event["id"]), item)
    active, stored = await store.store_events(conn, org, [
        {"config_id": i.config_id, "gateway": i.gateway, "event_id": i.event["id"], "event_type": i.event["type"],
         "payment_id": i.payment_id, "payload": i.raw, "status": i.status} for i in first.values()])
    outcomes: list[tuple[str | None, BaseException | None]] = []
    for item in batch:
        key = (item.gateway, item.event["id"])
        if item.config_id not in active:
            outcomes.append((None, Inactive()))
        elif first[key] is not item or key not in stored:
            outcomes.append((REPLAYED, None))
        elif item.gift is None and item.refund is None:
            outcomes.append((f"{item.event['type']}: stored, nothing to do", None))
        else:
            assert uow is not None, "a gift or refund is acted on in a unit of work"
            outcomes.append((await _act(uow, org, item), None))
    return outcomes


async def _act(uow: UnitOfWork, org: uuid.UUID, item: Received) -> str:
    gateway, event = item.gateway, item.event
    if item.gift is not None:
        gift = item.gift
        if not await store.insert_payment(uow.conn, org, gateway, gift.payment_id, gift.amount, gift.currency,
                                          gift.email):
            return "payment known already"
        uow.publish("billing.payment.succeeded", billing_events_pb2.PaymentSucceededEvent(
            gateway=gateway, payment_id=gift.payment_id, amount=money(gift.amount, gift.currency),
            donor_email=gift.email, donor_first_name=gift.first_name, donor_last_name=gift.last_name,
            project_id=gift.project_id, paid_time=_ts(gift.paid_at), gateway_event_id=event["id"]),
            aggregate_type="payment", aggregate_id=gift.payment_id)
        for waiting in await store.waiting_events(uow.conn, org, gateway, gift.payment_id):
            early = READERS[gateway][1](waiting["payload"])
            if early is not None:
                await _refund(uow, org, gateway, early, waiting["event_id"])
            await store.mark_processed(uow.conn, org, gateway, waiting["event_id"])
        return "payment recorded"
    if item.refund is not None:
        if await store.payment(uow.conn, org, gateway, item.refund.payment_id) is None:
            await store.mark_waiting(uow.conn, org, gateway, event["id"])
            return "refund waits for its payment"
        return await _refund(uow, org, gateway, item.refund, event["id"])
    return f"{event['type']}: stored, nothing to do"


async def _refund(uow: UnitOfWork, org: uuid.UUID, gateway: str, refund: rules.GiftRefund, event_id: str) -> str:
    payment = await store.payment(uow.conn, org, gateway, refund.payment_id)
    amount = min(refund.amount, payment["amount"] - payment["refunded_amount"])
    if amount <= 0 or not await store.insert_refund(uow.conn, org, gateway, refund.refund_id, refund.payment_id,
                                                    amount):
        return "refund known already"
    uow.publish("billing.payment.refunded", billing_events_pb2.PaymentRefundedEvent(
        gateway=gateway, payment_id=refund.payment_id, amount=money(amount, payment["currency"]),
        refund_id=refund.refund_id, refund_time=_ts(refund.created), gateway_event_id=event_id),
        aggregate_type="payment", aggregate_id=refund.payment_id)
    return "refund recorded"
