"""identity.organization.created -> the new organization's trial subscription."""

from __future__ import annotations

import functools
import uuid
from datetime import UTC

from givance.events.v1 import event_pb2, identity_events_pb2

from chassis import events
from chassis.db import UnitOfWork
from services.billing.handlers.subscriptions import start_trial
from services.billing.settings import BillingSettings

QUEUE = "billing.organization-setup"
BINDINGS = ["identity.organization.created"]


@functools.cache
def _trial_plan() -> str:
    return BillingSettings().trial_plan_code


async def on_organization_created(uow: UnitOfWork, event: event_pb2.Event) -> None:
    created = events.unpack(event, identity_events_pb2.OrganizationCreatedEvent)
    # The trial starts when the organization was created, however late the event arrives.
    await start_trial(uow, uuid.UUID(created.organization_id), _trial_plan(),
                      event.occur_time.ToDatetime(tzinfo=UTC))
