"""billing.entitlements.changed -> identity's replica of the seat limit."""

from __future__ import annotations

import uuid
from datetime import UTC

from givance.events.v1 import billing_events_pb2, event_pb2

from chassis import events
from chassis.db import UnitOfWork
from services.identity.handlers import seats

QUEUE = "identity.entitlements"
BINDINGS = ["billing.entitlements.changed"]


async def on_entitlements_changed(uow: UnitOfWork, env: event_pb2.Event) -> None:
    e = events.unpack(env, billing_events_pb2.EntitlementsChangedEvent)
    await seats.record(uow, uuid.UUID(e.organization_id), e.plan_code, e.seats, e.decide_time.ToDatetime(tzinfo=UTC))
