"""identity's membership events -> crm.members, the replica of who may be assigned todos.

identity.member.joined and identity.organization.created (the owner) make a member active;
identity.membership.changed makes them inactive (suspended, removed) or active again
(reactivated); role_changed says nothing about it (it is sent for suspended members too). A
service account's removal (the same routing key) is not a membership: skipped. Each event
carries its occur time, and an older one arriving after a newer one changes nothing.
"""

from __future__ import annotations

import logging
from datetime import UTC

from givance.events.v1 import event_pb2, identity_events_pb2

from chassis import events
from chassis.db import UnitOfWork
from services.crm.domain import todos as rules
from services.crm.handlers.todos import record_member

log = logging.getLogger(__name__)

QUEUE = "crm.members"
MEMBER_JOINED = "identity.member.joined"
MEMBERSHIP_CHANGED = "identity.membership.changed"
ORGANIZATION_CREATED = "identity.organization.created"
BINDINGS = [MEMBER_JOINED, MEMBERSHIP_CHANGED, ORGANIZATION_CREATED]


async def on_membership_event(uow: UnitOfWork, event: event_pb2.Event) -> None:
    if event.type == MEMBER_JOINED:
        joined = events.unpack(event, identity_events_pb2.MemberJoinedEvent)
        org, user, active = joined.organization_id, joined.user_id, True
    elif event.type == ORGANIZATION_CREATED:
        created = events.unpack(event, identity_events_pb2.OrganizationCreatedEvent)
        org, user, active = created.organization_id, created.owner_user_id, True
    elif event.type == MEMBERSHIP_CHANGED:
        if event.aggregate_type == "service_account":
            return
        changed = events.unpack(event, identity_events_pb2.MembershipChangedEvent)
        active = rules.ACTIVE_AFTER_CHANGE.get(changed.change)
        if active is None:
            if changed.change not in rules.ACTIVE_AFTER_CHANGE:
                log.warning("crm.members: unknown membership change %r in event %s; skipped", changed.change,
                            event.id)
            return
        org, user = changed.organization_id, changed.user_id
    else:
        log.warning("crm.members: unexpected event type %r (%s); skipped", event.type, event.id)
        return
    await record_member(uow, org, user, active=active, event_time=event.occur_time.ToDatetime(tzinfo=UTC))
