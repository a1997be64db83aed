"""identity.organization.created -> the new organization gets the default donor journey."""

from __future__ import annotations

from givance.events.v1 import event_pb2

from chassis.db import UnitOfWork
from services.crm.handlers.journeys import seed_default_journey

QUEUE = "crm.organization-setup"
BINDINGS = ["identity.organization.created"]


async def on_organization_created(uow: UnitOfWork, event: event_pb2.Event) -> None:
    await seed_default_journey(uow)
