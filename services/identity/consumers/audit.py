"""`*.audit.recorded` and `*.audit.batch_recorded` -> the audit trail (identity.activity_logs)."""

from __future__ import annotations

import uuid
from datetime import UTC

from givance.events.v1 import audit_events_pb2, event_pb2
from google.protobuf.json_format import MessageToDict

from chassis import events
from chassis.db import UnitOfWork
from services.identity.handlers import audit as handlers

QUEUE = "identity.audit-trail"
BINDINGS = ["*.audit.recorded", "*.audit.batch_recorded"]


async def on_audit_recorded(uow: UnitOfWork, env: event_pb2.Event) -> None:
    if env.type.endswith(".audit.batch_recorded"):
        batch = events.unpack(env, audit_events_pb2.AuditBatchRecordedEvent)
        for i, entry in enumerate(batch.entries):
            entry_id = entry.entry_id or str(uuid.uuid5(uuid.UUID(env.id), str(i)))
            await handlers.record(uow, _activity(env, entry, entry_id))
        return
    await handlers.record(uow, _activity(env, events.unpack(env, audit_events_pb2.AuditRecordedEvent), env.id))


def _activity(env: event_pb2.Event, event: audit_events_pb2.AuditRecordedEvent,
              event_id: str) -> handlers.Activity:
    when = event.occur_time if event.HasField("occur_time") else env.occur_time
    return handlers.Activity(
        event_id=event_id,
        occurred_at=when.ToDatetime(tzinfo=UTC),
        # The routing key names the publisher; the exchange is the services' own.
        service=env.type.split(".", 1)[0],
        actor_id=event.actor_id, actor_kind=event.actor_kind, action=event.action,
        resource_type=event.resource_type, resource_id=event.resource_id,
        before=MessageToDict(event.before) if event.HasField("before") else None,
        after=MessageToDict(event.after) if event.HasField("after") else None,
        ip_address=event.ip_address, request_id=event.request_id,
    )
