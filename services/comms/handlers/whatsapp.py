"""WhatsApp: the staff allowlist, and inbound messages from Meta's webhook.

An allowlisted number's message is stored (comms.webhook_events, once per wamid) and published
as `comms.whatsapp.message_received` for the ai service; a message from any other number is
kept apart (comms.unrouted_webhooks) and answered with nothing. The ai assistant's answers
come back as `ai.whatsapp.reply_requested` and are sent through the WhatsApp provider."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from givance.events.v1 import comms_events_pb2

from chassis.convert import timestamp
from chassis.db import UnitOfWork
from chassis.errors import AlreadyExists, NotFound, Violations
from chassis.resource import parse_id, parse_optional_id
from services.comms.domain import addresses
from services.comms.domain import messages as rules
from services.comms.domain.delivery import PermanentFailure
from services.comms.domain.webhooks import WhatsAppInbound
from services.comms.handlers.deps import Deps
from services.comms.store import webhooks as webhooks_store
from services.comms.store import whatsapp as store

log = logging.getLogger(__name__)


async def add_staff(deps: Deps, org: uuid.UUID, phone: str, user_id: str) -> dict[str, Any]:
    v = Violations()
    clean = addresses.phone(phone, "staff.phone", v)
    user = parse_optional_id(user_id, "staff.user_id", v)
    v.raise_if_any()
    async with deps.db.unit_of_work(org) as uow:
        row = await store.add(uow.conn, org, clean, user)
    if row is None:
        raise AlreadyExists("that number is another organization's staff number", reason="WHATSAPP_NUMBER_TAKEN")
    return row


async def list_staff(deps: Deps, org: uuid.UUID) -> list[dict[str, Any]]:
    async with deps.db.unit_of_work(org) as uow:
        return await store.every(uow.conn, org)


async def remove_staff(deps: Deps, org: uuid.UUID, staff_id: str) -> None:
    sid = parse_id(staff_id, "id")
    async with deps.db.unit_of_work(org) as uow:
        if not await store.remove(uow.conn, org, sid):
            raise NotFound(f"WhatsApp staff {staff_id} not found")


async def receive(deps: Deps, m: WhatsAppInbound, payload: dict[str, Any]) -> str:
    """"accepted", "duplicate" or "unknown-number"."""
    async with deps.db.unit_of_work(None) as uow:
        route = await store.route(uow.conn, m.from_phone)
        if route is None:
            await store.unrouted(uow.conn, "whatsapp", m.event_id, payload)
            return "unknown-number"
    org = route["tenant_id"]
    async with deps.db.unit_of_work(org) as uow:
        row = await webhooks_store.record(uow.conn, org, "whatsapp", m.event_id, "message", payload)
        if row is None:
            return "duplicate"
        user = await store.staff_user(uow.conn, org, route["staff_id"])
        when = datetime.fromtimestamp(m.timestamp, UTC) if m.timestamp else datetime.now(UTC)
        uow.publish(rules.WHATSAPP_MESSAGE_RECEIVED, comms_events_pb2.WhatsAppMessageReceivedEvent(
            webhook_event_id=str(row), from_phone=m.from_phone, staff_user_id=str(user or ""), text=m.text,
            receive_time=timestamp(when)), aggregate_type="whatsapp", aggregate_id=m.from_phone)
        await webhooks_store.processed(uow.conn, org, row)
    return "accepted"


async def reply(uow: UnitOfWork, deps: Deps, to_phone: str, text: str, inbound_id: str) -> str:
    """Sends the ai assistant's answer to a staff member: "sent", or "refused" when the number
    is not one of this organization's staff numbers (comms never messages anyone else for ai).
    A provider's transient failure is raised (the consumer retries); a permanent one is logged."""
    org = uow.tenant_id
    route = await store.route(uow.conn, to_phone)
    if route is None or route["tenant_id"] != org:
        log.warning("whatsapp: a reply to %s is not for one of organization %s's staff numbers", to_phone, org)
        return "refused"
    reply_to = ""
    inbound = parse_optional_id(inbound_id, "inbound_message_id", Violations())
    if inbound is not None:
        row = await webhooks_store.get(uow.conn, org, inbound)
        reply_to = row["provider_event_id"] if row else ""
    try:
        await deps.whatsapp.send_text(to_phone, rules.whatsapp_text(text), reply_to)
    except PermanentFailure as exc:
        log.error("whatsapp: the reply to %s was refused: %s", to_phone, exc)
        return "failed"
    return "sent"
