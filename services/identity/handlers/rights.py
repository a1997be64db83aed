"""Who holds what in an organization: the checks and the announcements every change of a
member's rights shares (members, invitations and roles use them; they import nothing of each
other).

Every change of a member's rights (role, overrides, suspension, removal, a change of their
custom role) records a not_before for the member in identity.revocations and publishes
`identity.membership.changed` in the same transaction: every service (this one at once, the
others through the broadcast) then refuses the member's access tokens issued before it. The
member refreshes (while still an active member) to get a token with the new rights.

Changes that touch who holds what lock the organization row first (FOR NO KEY UPDATE), so
the last-owner rule and role deletion never race another change of the same organization.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from givance.events.v1 import identity_events_pb2

from chassis.context import Principal
from chassis.db import UnitOfWork
from chassis.errors import NotFound
from chassis.revocation import RevocationList
from services.identity.domain import members as rules
from services.identity.domain import roles
from services.identity.handlers import grants
from services.identity.handlers.caller import user_id_or_none
from services.identity.store import members as store
from services.identity.store import roles as role_store
from services.identity.store.members import Member

MEMBERSHIP_CHANGED = "identity.membership.changed"
MEMBER_JOINED = "identity.member.joined"


def member_audit(row: Member) -> dict:
    """A member's rights as the audit trail records them."""
    m = row.membership()
    return {"role": m.role.api_name, "status": m.status, "overrides": m.overrides.as_json()}


async def actor_is_owner(uow: UnitOfWork, org: uuid.UUID, principal: Principal) -> bool:
    actor = user_id_or_none(principal)
    if actor is None:
        return False
    row = await store.get_member(uow.conn, org, actor)
    return row is not None and row.role == roles.OWNER and row.status == rules.ACTIVE


async def role_permissions(uow: UnitOfWork, org: uuid.UUID, ref: rules.RoleRef) -> tuple[str, ...]:
    """What a role grants: a system role's permissions, or a custom role's (NOT_FOUND if it is gone)."""
    if ref.role != roles.CUSTOM:
        return roles.permissions_for(ref.role)
    assert ref.custom_role_id is not None
    row = await role_store.get_role(uow.conn, org, ref.custom_role_id)
    if row is None:
        raise NotFound(f"role {ref.custom_role_id} not found")
    return tuple(row.permissions)


async def lock_member(uow: UnitOfWork, org: uuid.UUID, user_id: uuid.UUID) -> Member:
    """The member whose rights change, locked after the organization (NOT_FOUND if none)."""
    await store.lock_organization(uow.conn, org)
    row = await store.get_member(uow.conn, org, user_id, for_update=True)
    if row is None:
        raise NotFound(f"member {user_id} not found")
    return row


class RightsChanges:
    """The members whose rights one unit of work changes: announced and recorded in it, and
    applied to this process's revocation list after it commits.

        changes = RightsChanges(revocations)
        async with db.unit_of_work(org) as uow:
            ...
            changes.add(uow, org, user_id, rules.ROLE_CHANGED)
            await changes.record(uow)
        changes.apply()
    """

    def __init__(self, revocations: RevocationList):
        self.revocations = revocations
        self.pending: list[tuple[uuid.UUID, uuid.UUID, float]] = []

    def __len__(self) -> int:
        return len(self.pending)

    def add(self, uow: UnitOfWork, org: uuid.UUID, user_id: uuid.UUID, change: str) -> float:
        """Queue the membership.changed broadcast; the row lock is held, so now is after any
        token issued from the old membership (handlers/grants.py)."""
        not_before = grants.issue_time()
        event = identity_events_pb2.MembershipChangedEvent(organization_id=str(org), user_id=str(user_id),
                                                           change=change)
        event.not_before.FromNanoseconds(int(not_before * 1_000_000) * 1000)
        event.expire_time.FromNanoseconds(int((not_before + self.revocations.horizon) * 1e9))
        uow.publish(MEMBERSHIP_CHANGED, event, aggregate_type="membership", aggregate_id=f"{org}/{user_id}")
        self.pending.append((org, user_id, not_before))
        return not_before

    async def record(self, uow: UnitOfWork) -> None:
        for org, user_id, not_before in self.pending:
            await store.upsert_revocation(uow.conn, org, user_id, not_before, self.revocations.horizon)

    def apply(self) -> None:
        """After the commit: this process refuses the tokens at once, before the broadcast arrives."""
        for org, user_id, not_before in self.pending:
            self.revocations.revoke(str(user_id), org, not_before, not_before + self.revocations.horizon)


def publish_member_joined(uow: UnitOfWork, org_id: uuid.UUID, user_id: uuid.UUID, role: str) -> None:
    """identity.member.joined, in the transaction that writes the active membership (crm keeps
    a replica of who may be assigned work). Same aggregate as identity.membership.changed, so
    the relay publishes a member's events in order."""
    now = datetime.now(UTC)
    event = identity_events_pb2.MemberJoinedEvent(organization_id=str(org_id), user_id=str(user_id), role=role)
    event.join_time.FromDatetime(now)
    uow.publish(MEMBER_JOINED, event, aggregate_type="membership", aggregate_id=f"{org_id}/{user_id}",
                occurred_at=now)

