"""A service's replica of who is an active member of each organization, kept from identity's
events, for the services that must check a user id they are given (a todo's assignee in crm,
a generation session's signer in comms) without calling identity in the request path.

identity.member.joined and identity.organization.created (the owner) make a member active;
identity.membership.changed makes them inactive (suspended, removed) or active again
(reactivated); role_changed says nothing about it (it is sent for suspended members too). A
service account's removal (the same routing key) is not a membership: skipped. Each event
carries its occur time, and an older one arriving after a newer one changes nothing.

    change = members.change_of(event)         # (organization id, user id, active) or None
    await members.record(uow.conn, "crm", org, user, active=..., event_time=...)
    await members.is_active(uow.conn, "crm", org, user)

The table (`<schema>.members`, under row-level security) is made by `create_table` in the
service's migration.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

from givance.events.v1 import event_pb2, identity_events_pb2

from chassis import events

log = logging.getLogger(__name__)

MEMBER_JOINED = "identity.member.joined"
MEMBERSHIP_CHANGED = "identity.membership.changed"
ORGANIZATION_CREATED = "identity.organization.created"
BINDINGS = [MEMBER_JOINED, MEMBERSHIP_CHANGED, ORGANIZATION_CREATED]
# identity's membership changes -> whether the member is active afterwards (None: no change)
ACTIVE_AFTER_CHANGE = {"reactivated": True, "suspended": False, "removed": False, "role_changed": None}


def change_of(event: event_pb2.Event) -> tuple[str, str, bool, datetime] | None:
    """(organization id, user id, active, as of) of a membership event; None for one that says
    nothing about who is a member."""
    at = event.occur_time.ToDatetime(tzinfo=UTC)
    if event.type == MEMBER_JOINED:
        joined = events.unpack(event, identity_events_pb2.MemberJoinedEvent)
        return joined.organization_id, joined.user_id, True, at
    if event.type == ORGANIZATION_CREATED:
        created = events.unpack(event, identity_events_pb2.OrganizationCreatedEvent)
        return created.organization_id, created.owner_user_id, True, at
    if event.type == MEMBERSHIP_CHANGED:
        if event.aggregate_type == "service_account":
            return None
        changed = events.unpack(event, identity_events_pb2.MembershipChangedEvent)
        active = ACTIVE_AFTER_CHANGE.get(changed.change)
        if active is None:
            if changed.change not in ACTIVE_AFTER_CHANGE:
                log.warning("members: unknown membership change %r in event %s; skipped", changed.change, event.id)
            return None
        return changed.organization_id, changed.user_id, active, at
    log.warning("members: unexpected event type %r (%s); skipped", event.type, event.id)
    return None


async def record(conn, schema: str, org: uuid.UUID, user_id: uuid.UUID, *, active: bool,
                 event_time: datetime) -> bool:
    """Set whether the user is an active member, as of event_time; an event no newer than the
    one that last set the row changes nothing. True when the row was written."""
    result = await conn.execute(
        f"INSERT INTO {schema}.members AS m (organization_id, user_id, active, last_event_time) "
        "VALUES (:org, :user, :active, :at) "
        "ON CONFLICT (organization_id, user_id) DO UPDATE "
        "SET active = EXCLUDED.active, last_event_time = EXCLUDED.last_event_time, updated_at = now() "
        "WHERE m.last_event_time < EXCLUDED.last_event_time",
        {"org": org, "user": user_id, "active": active, "at": event_time})
    return result.rowcount == 1


async def is_active(conn, schema: str, org: uuid.UUID, user_id: uuid.UUID) -> bool:
    """Whether the user is an active member. FOR SHARE: a suspension being recorded waits for
    the transaction that relies on the member, or that one waits for it and sees it."""
    return bool((await conn.execute(
        f"SELECT active FROM {schema}.members WHERE organization_id = :org AND user_id = :user FOR SHARE",
        {"org": org, "user": user_id})).scalar())


def create_table(op, schema: str) -> None:
    """The replica's table, under row-level security (for a service's migration)."""
    from chassis.migrate import tenant_table

    op.execute(f"""
        CREATE TABLE {schema}.members (
          organization_id uuid NOT NULL,
          user_id uuid NOT NULL,
          active boolean NOT NULL,
          last_event_time timestamptz NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (organization_id, user_id)
        )""")
    tenant_table(op, f"{schema}.members")
