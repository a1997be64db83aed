"""Provider webhooks: delivery, bounce, complaint and unsubscribe notifications (Mailgun, SendGrid).

A verified event is stored raw first (comms.webhook_events, unique per provider event id), then
applied in its own unit of work, its events through the outbox. Applying is idempotent: the
email event it makes names the webhook event (unique), so a redelivery or an operator's replay
(python -m services.comms.replay) of an applied event changes nothing, and one whose applying
failed (kept with its error) is applied when replayed."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from givance.events.v1 import comms_events_pb2

from chassis.convert import timestamp
from chassis.db import Database
from services.comms.domain import messages as rules
from services.comms.domain import webhooks as parse
from services.comms.domain.webhooks import ProviderEvent
from services.comms.handlers.sender import record_bounce
from services.comms.store import messages as store
from services.comms.store import suppressions as suppressions_store
from services.comms.store import webhooks as webhooks_store

log = logging.getLogger(__name__)

APPLIED = ("delivered", "failed", "complained", "unsubscribed")


async def receive(db: Database, provider: str, event: ProviderEvent, payload: dict[str, Any]) -> str:
    """What became of it: "applied", "ignored" (stored, nothing to do), "duplicate",
    "unknown-message" or "failed" (kept to replay)."""
    ids = rules.parse_rfc822_message_id(event.message_id)
    if ids is None:
        return "unknown-message"
    org, message_id = ids
    async with db.unit_of_work(org) as uow:
        if await store.get(uow.conn, org, message_id) is None:
            return "unknown-message"
        row_id = await webhooks_store.record(uow.conn, org, provider, event.event_id, event.kind, payload)
        if row_id is None:
            earlier = await webhooks_store.find(uow.conn, org, provider, event.event_id)
            if earlier is None or earlier["processed_at"] is not None:
                return "duplicate"
            row_id = earlier["id"]  # stored, never applied: the provider's retry applies it
    return await apply(db, org, row_id)


async def apply(db: Database, org: uuid.UUID, row_id: uuid.UUID) -> str:
    """Applies a stored webhook event: "applied", "ignored", "duplicate" (applied before), "failed"."""
    try:
        async with db.unit_of_work(org) as uow:
            row = await webhooks_store.get(uow.conn, org, row_id, for_update=True)
            if row is None:
                return "unknown-event"
            payload = row["payload"] if isinstance(row["payload"], dict) else json.loads(row["payload"])
            event = _parse(row["provider"], payload)
            ids = rules.parse_rfc822_message_id(event.message_id) if event else None
            msg = await store.get(uow.conn, org, ids[1], for_update=True) if ids and ids[0] == org else None
            if event is None or msg is None or event.kind not in APPLIED:
                outcome = "ignored"  # stored, nothing to do (SendGrid's "processed", an open, ...)
            else:
                outcome = "applied" if await _effects(uow, org, row_id, event, msg) else "duplicate"
            await webhooks_store.processed(uow.conn, org, row_id)
            return outcome
    except Exception as exc:  # kept with its error for a replay; the provider gets its 200
        log.exception("webhook event %s could not be applied", row_id)
        async with db.unit_of_work(org) as uow:
            await webhooks_store.failed(uow.conn, org, row_id, f"{type(exc).__name__}: {exc}")
        return "failed"


def _parse(provider: str, payload: dict[str, Any]) -> ProviderEvent | None:
    """A stored payload read again (Mailgun's whole body; one item of SendGrid's array)."""
    if provider == "mailgun":
        return parse.mailgun_event(payload)
    if provider == "sendgrid":
        return parse.sendgrid_event(payload)
    return None


async def _effects(uow, org: uuid.UUID, row_id: uuid.UUID, event: ProviderEvent, msg) -> bool:
    """The event's effects, once: False when they were applied already."""
    donor = str(msg.donor_id or "")
    if event.kind == "failed" and event.permanent:
        return await record_bounce(uow, org, msg, event.reason or "bounced", permanent=True, webhook_event_id=row_id)
    detail = f"temporary: {event.reason}" if event.kind == "failed" else f"via {event.provider}"
    kind = {"failed": "bounced", "delivered": "delivered", "complained": "complained",
            "unsubscribed": "unsubscribed"}.get(event.kind)
    if kind is None:
        return False
    if not await store.add_event(uow.conn, org, msg.id, kind, detail=detail, webhook_event_id=row_id):
        return False
    if event.kind == "delivered":
        if msg.status == "sent":
            await store.set_status(uow.conn, org, msg.id, "delivered")
        uow.publish(rules.EMAIL_DELIVERED, comms_events_pb2.EmailDeliveredEvent(
            message_id=str(msg.id), donor_id=donor, deliver_time=timestamp(datetime.now(UTC))),
            aggregate_type="message", aggregate_id=str(msg.id))
    elif event.kind == "complained":
        await suppressions_store.add(uow.conn, org, msg.to_address, "complaint", "spam complaint")
        await suppressions_store.change_consent(uow.conn, org, msg.to_address, "*", False, "complaint", msg.id)
        uow.publish(rules.EMAIL_COMPLAINED, comms_events_pb2.EmailComplainedEvent(
            message_id=str(msg.id), donor_id=donor, address=msg.to_address), aggregate_type="message",
            aggregate_id=str(msg.id))
    elif event.kind == "unsubscribed":
        await suppressions_store.add(uow.conn, org, msg.to_address, "unsubscribed", f"via {event.provider}")
        await suppressions_store.change_consent(uow.conn, org, msg.to_address, "*", False, "provider", msg.id)
        uow.publish(rules.EMAIL_UNSUBSCRIBED, comms_events_pb2.EmailUnsubscribedEvent(
            message_id=str(msg.id), donor_id=donor, source="provider", address=msg.to_address),
            aggregate_type="message", aggregate_id=str(msg.id))
    return True
