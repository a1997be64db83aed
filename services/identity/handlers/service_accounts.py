"""Service-account use cases: create (the secret is returned once), list, delete (soft), and
IssueServiceToken (OAuth 2.0 client credentials: handlers/tokens.py).

A service account's permissions must lie within its creator's own: nobody mints a
credential stronger than themself, then or later. Its tokens carry only what its creator still
holds when the token is issued (`creator_rights`, read by handlers/tokens.py): a demoted
creator's accounts lose what the creator lost, and a suspended or removed creator's accounts
get no token at all; their tokens already issued are revoked with the creator's
(`revoke_created_by`): a credential never outgrows, nor outlives, the rights of whoever made it.

Deleting one stops new tokens at once, and broadcasts
`identity.membership.changed` (change "removed", the account as the principal) so every
service refuses its existing tokens too; the revocation is also recorded (identity.revocations),
so a service that missed the broadcast (it was down or cut off) lists it when it comes back.
"""

from __future__ import annotations

import time
import uuid

from givance.events.v1 import identity_events_pb2

from chassis.context import Principal
from chassis.db import Database, UnitOfWork
from chassis.errors import NotFound, PermissionDenied, Violations
from chassis.resource import parse_id
from services.identity.domain import service_accounts as rules
from services.identity.handlers import grants
from services.identity.handlers.deps import Deps
from services.identity.handlers.rights import RightsChanges
from services.identity.store import members as member_store
from services.identity.store import service_accounts as store
from services.identity.store.service_accounts import ServiceAccount

# A service account may create service accounts; the chain back to a member is this long at most.
MAX_CREATOR_CHAIN = 5


async def create(db: Database, principal: Principal, name: str, permissions: list[str]) -> tuple[ServiceAccount, str]:
    v = Violations()
    name = rules.clean_name(name, "name", v)
    perms = rules.clean_permissions(permissions, "permissions", v)
    v.raise_if_any()
    excess = rules.beyond(principal.permissions, perms)
    if excess:
        raise PermissionDenied(f"a service account cannot hold permissions its creator lacks: {', '.join(excess)}",
                               reason="PERMISSION_ESCALATION", metadata={"permissions": ",".join(excess)})
    org = principal.tenant_id
    client_id, secret, secret_hash = rules.new_credentials(org)
    async with db.unit_of_work(org) as uow:
        row = await store.insert(uow.conn, org, uuid.uuid4(), name, client_id, secret_hash, perms, principal.subject)
        uow.audit("identity.service_account.create", "service_account", str(row.id),
                  after={"name": name, "client_id": client_id, "permissions": perms})
    return row, secret


async def creator_rights(uow: UnitOfWork, org: uuid.UUID, creator: uuid.UUID | None,
                         depth: int = 0) -> tuple[str, ...] | None:
    """What the creator of a service account holds now: an active member's permissions, or (a
    service account made by a service account) that account's own, capped by its creator's.
    None when the creator is gone, suspended, or not on record."""
    if creator is None or depth > MAX_CREATOR_CHAIN:
        return None
    granted = await grants.member_grants(uow.conn, org, creator)
    if granted is not None:
        return granted[1]
    account = await store.live_permissions(uow.conn, org, creator)
    if account is None:
        return None
    above = await creator_rights(uow, org, account[1], depth + 1)
    return None if above is None else tuple(rules.capped(account[0], above))


async def revoke_created_by(uow: UnitOfWork, changes: RightsChanges, org: uuid.UUID, creator: uuid.UUID,
                            change: str) -> None:
    """The creator's rights changed: the tokens of the service accounts they made are revoked with
    theirs (the next token is capped anew, or refused)."""
    for account_id in await store.ids_created_by(uow.conn, org, creator):
        changes.add(uow, org, account_id, change)


async def list_accounts(db: Database, org: uuid.UUID) -> list[ServiceAccount]:
    async with db.unit_of_work(org) as uow:
        return await store.list_active(uow.conn, org)


async def delete(deps: Deps, org: uuid.UUID, account_id: str) -> None:
    aid = parse_id(account_id, "id")
    async with deps.db.unit_of_work(org) as uow:
        row = await store.soft_delete(uow.conn, org, aid)
        if row is None:
            raise NotFound(f"service account {account_id} not found")
        not_before = time.time()
        event = identity_events_pb2.MembershipChangedEvent(organization_id=str(org), user_id=str(aid),
                                                           change="removed")
        event.not_before.FromNanoseconds(int(not_before * 1_000_000) * 1000)
        event.expire_time.FromNanoseconds(int((not_before + deps.revocations.horizon) * 1e9))
        uow.publish("identity.membership.changed", event, aggregate_type="service_account", aggregate_id=str(aid))
        # Recorded, so a service that starts or reconnects later still refuses the tokens.
        await member_store.upsert_revocation(uow.conn, org, aid, not_before, deps.revocations.horizon)
        uow.audit("identity.service_account.delete", "service_account", str(aid),
                  before={"name": row.name, "client_id": row.client_id, "permissions": list(row.permissions)})
    # this process at once; the others when the broadcast arrives
    deps.revocations.revoke(str(aid), org, not_before, not_before + deps.revocations.horizon)
