"""Domain events: the protobuf envelope, outbox rows, and bus topology names.

Routing key and type are the same string, `<service>.<aggregate>.<event>`. Trace context
and tenant travel in message headers as well as in the envelope.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from givance.events.v1 import event_pb2
from google.protobuf import any_pb2
from google.protobuf.message import Message
from opentelemetry import propagate

EXCHANGE_TYPE = "topic"
DEAD_LETTER_EXCHANGE = "givance.dlx"
CONTENT_TYPE = "application/x-protobuf"
TENANT_HEADER = "x-tenant-id"
ATTEMPTS_HEADER = "x-givance-attempts"


def outbox_channel(schema: str) -> str:
    return f"givance_outbox_{schema}"


def envelope(
    event_type: str,
    payload: Message,
    tenant_id: uuid.UUID,
    aggregate_type: str,
    aggregate_id: str,
    event_id: str | None = None,
    occurred_at: datetime | None = None,
) -> event_pb2.Event:
    env = event_pb2.Event(
        id=event_id or str(uuid.uuid4()),
        type=event_type,
        tenant_id=str(tenant_id),
        aggregate_type=aggregate_type,
        aggregate_id=aggregate_id,
    )
    env.occur_time.FromDatetime(occurred_at or datetime.now(UTC))
    packed = any_pb2.Any()
    packed.Pack(payload, type_url_prefix="type.givance.org/")
    env.payload.CopyFrom(packed)
    return env


def outbox_row(
    event_type: str, payload: Message, tenant_id: uuid.UUID, aggregate_type: str, aggregate_id: str,
    occurred_at: datetime | None = None,
) -> dict:
    env = envelope(event_type, payload, tenant_id, aggregate_type, aggregate_id, occurred_at=occurred_at)
    headers: dict[str, str] = {TENANT_HEADER: str(tenant_id)}
    propagate.inject(headers)  # the trace of the request that caused the event
    return {
        "event_id": env.id,
        "routing_key": event_type,
        "tenant_id": tenant_id,
        "aggregate_id": aggregate_id,
        "body": env.SerializeToString(),
        "headers": json.dumps(headers),
    }


def parse(body: bytes) -> event_pb2.Event:
    env = event_pb2.Event()
    env.ParseFromString(body)
    return env


def unpack(env: event_pb2.Event, message_type: type[Message]) -> Message:
    msg = message_type()
    if not env.payload.Unpack(msg):
        raise ValueError(f"event {env.id} of type {env.type} does not hold a {message_type.DESCRIPTOR.full_name}")
    return msg


def audit_entry(action: str, resource_type: str, resource_id: str, *, service: str, actor_id: str,
                actor_kind: str, request_id: str, ip_address: str, before: dict | None = None,
                after: dict | None = None, occurred_at: datetime | None = None):
    """One audit-trail entry (givance.events.v1.AuditRecordedEvent)."""
    from givance.events.v1 import audit_events_pb2
    from google.protobuf import struct_pb2

    entry = audit_events_pb2.AuditRecordedEvent(
        actor_id=actor_id, actor_kind=actor_kind, action=action, resource_type=resource_type,
        resource_id=resource_id, request_id=request_id, service=service, ip_address=ip_address,
    )
    for field, value in (("before", before), ("after", after)):
        if value is not None:
            struct = struct_pb2.Struct()
            struct.update(json.loads(json.dumps(value, default=str)))
            getattr(entry, field).CopyFrom(struct)
    if occurred_at is not None:
        entry.occur_time.FromDatetime(occurred_at)
    return entry
