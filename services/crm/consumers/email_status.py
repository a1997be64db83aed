"""comms.email.bounced (permanent), .complained and .unsubscribed (from everything) -> the donor's
email status, when the address is still the donor's email. The inbox makes a redelivery
harmless; an older event arriving after a newer one changes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC

from givance.events.v1 import comms_events_pb2, event_pb2

from chassis import events
from chassis.db import UnitOfWork
from services.crm.handlers.donors import record_email_status

QUEUE = "crm.donor-email-status"
BOUNCED, COMPLAINED, UNSUBSCRIBED = "comms.email.bounced", "comms.email.complained", "comms.email.unsubscribed"
BINDINGS = [BOUNCED, COMPLAINED, UNSUBSCRIBED]


async def on_email_event(uow: UnitOfWork, event: event_pb2.Event) -> None:
    if event.type == BOUNCED:
        payload = events.unpack(event, comms_events_pb2.EmailBouncedEvent)
        status = "bounced" if payload.permanent else None
    elif event.type == COMPLAINED:
        payload = events.unpack(event, comms_events_pb2.EmailComplainedEvent)
        status = "complained"
    elif event.type == UNSUBSCRIBED:
        payload = events.unpack(event, comms_events_pb2.EmailUnsubscribedEvent)
        status = "unsubscribed" if not payload.category else None  # one category: still reachable
    else:
        return
    try:
        donor = uuid.UUID(payload.donor_id)
    except ValueError:
        return
    if status is None or not payload.address:
        return
    await record_email_status(uow, donor, payload.address, status, event.occur_time.ToDatetime(tzinfo=UTC))
