"""identity's membership events -> crm.members, the replica of who may be assigned todos
(which events mean what: chassis.members)."""

from __future__ import annotations

from givance.events.v1 import event_pb2

from chassis import members
from chassis.db import UnitOfWork
from services.crm.handlers.todos import record_member

QUEUE = "crm.members"
MEMBER_JOINED = members.MEMBER_JOINED
MEMBERSHIP_CHANGED = members.MEMBERSHIP_CHANGED
ORGANIZATION_CREATED = members.ORGANIZATION_CREATED
BINDINGS = members.BINDINGS


async def on_membership_event(uow: UnitOfWork, event: event_pb2.Event) -> None:
    change = members.change_of(event)
    if change is not None:
        org, user, active, at = change
        await record_member(uow, org, user, active=active, event_time=at)
