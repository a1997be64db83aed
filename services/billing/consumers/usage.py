"""Usage from the other services' events, counted once each (the consumer's inbox): gifts,
donors created or imported, members joined, emails sent, AI tokens. comms' and ai's events are
bound by routing key; their payloads are read when their types are known to this build."""

from __future__ import annotations

import logging
from datetime import UTC

from givance.events.v1 import ai_events_pb2, crm_events_pb2, event_pb2

from chassis import events
from chassis.db import UnitOfWork
from services.billing.handlers.usage import count

log = logging.getLogger(__name__)

QUEUE = "billing.usage"
METRIC_OF = {
    "crm.donation.recorded": "donations",
    "crm.donor.created": "donors",
    "crm.donors.imported": "donors",
    "identity.member.joined": "members",
    "comms.email.sent": "emails",
    "ai.usage.recorded": "ai_tokens",
}
BINDINGS = list(METRIC_OF)


def _quantity(event: event_pb2.Event) -> int:
    if event.type == "crm.donors.imported":
        return int(events.unpack(event, crm_events_pb2.DonorsImportedEvent).created)
    if event.type == "ai.usage.recorded":
        return _tokens(event)
    return 1


def _tokens(event: event_pb2.Event) -> int:
    """The tokens an ai.usage.recorded event reports (prompt and completion)."""
    usage = events.unpack(event, ai_events_pb2.AiUsageRecordedEvent)
    return int(usage.prompt_tokens) + int(usage.completion_tokens)


async def on_usage_event(uow: UnitOfWork, event: event_pb2.Event) -> None:
    metric = METRIC_OF.get(event.type)
    if metric is None:
        log.warning("billing.usage: unexpected event type %r (%s); skipped", event.type, event.id)
        return
    await count(uow, uow.tenant_id, metric, event.occur_time.ToDatetime(tzinfo=UTC), _quantity(event), event.id)
