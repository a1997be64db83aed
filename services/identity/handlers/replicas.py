"""Re-announce identity's state to services that keep replicas of it.

crm keeps the organization's active members (who may be assigned todos) from
identity.member.joined and identity.membership.changed. Members who joined before crm
listened, or a replica rebuilt from scratch, are brought up to date by publishing
identity.member.joined again for every active membership: through the outbox, so nothing is
lost, and stamped now, so the replica (newest event wins) takes it over older state while a
later suspension still wins over it.
"""

from __future__ import annotations

import uuid

from chassis.db import Database
from services.identity.handlers.rights import publish_member_joined
from services.identity.store import members as member_store
from services.identity.store import organizations as organization_store


async def live_organizations(admin: Database) -> list[uuid.UUID]:
    """Every live organization's id. Organizations are tenant rows (RLS) to the service's own
    role, so this reads through the platform operator's connection (the migrations' role)."""
    async with admin.unit_of_work(None) as uow:
        return await organization_store.live_ids(uow.conn)


async def republish_members(db: Database, organizations: list[uuid.UUID]) -> int:
    """identity.member.joined for every active membership of these organizations, one
    transaction per organization (as that tenant); returns how many were published."""
    published = 0
    for org in organizations:
        async with db.unit_of_work(org) as uow:
            for member in await member_store.active_members(uow.conn, org):
                publish_member_joined(uow, org, member.user_id, member.role_name)
                published += 1
    return published
