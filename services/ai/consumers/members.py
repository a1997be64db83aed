"""identity's membership events -> ai.members, the replica the WhatsApp assistant's staff users are
checked against (which events mean what: chassis.members)."""

from __future__ import annotations

from givance.events.v1 import event_pb2

from chassis import members
from chassis.db import UnitOfWork
from services.ai.handlers.whatsapp import record_member

QUEUE = "ai.members"
BINDINGS = members.BINDINGS


async def on_membership_event(uow: UnitOfWork, event: event_pb2.Event) -> None:
    change = members.change_of(event)
    if change is not None:
        org, user, active, at = change
        await record_member(uow, org, user, active=active, event_time=at)
