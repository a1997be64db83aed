"""Service-account use cases: create (the secret is returned once), list, delete (soft), and
IssueServiceToken (OAuth 2.0 client credentials).

A service account's permissions must lie within its creator's own: nobody mints a
credential stronger than themself. Deleting one stops new tokens at once, and broadcasts
`identity.membership.changed` (change "removed", the account as the principal) so every
service refuses its existing tokens too; a service that misses the broadcast (it was down)
accepts them until they expire, at most the access-token lifetime later.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

from givance.events.v1 import identity_events_pb2

from chassis.auth import AUDIENCE, ISSUER
from chassis.context import Principal
from chassis.db import Database
from chassis.errors import InvalidArgument, NotFound, PermissionDenied, Unauthenticated, Violations
from chassis.revocation import RevocationList
from services.identity.domain import service_accounts as rules
from services.identity.handlers.keys import SigningKeys
from services.identity.store import service_accounts as store

BAD_CLIENT = "invalid client credentials"


async def create(db: Database, principal: Principal, name: str, permissions: list[str]) -> tuple[dict, str]:
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
        uow.audit("identity.service_account.create", "service_account", str(row["id"]),
                  after={"name": name, "client_id": client_id, "permissions": perms})
    return row, secret


async def list_accounts(db: Database, org: uuid.UUID) -> list[dict]:
    async with db.unit_of_work(org) as uow:
        return await store.list_active(uow.conn, org)


async def delete(db: Database, org: uuid.UUID, account_id: str, revocations: RevocationList | None = None) -> None:
    if not account_id:
        raise InvalidArgument.field("id", "is required")
    try:
        aid = uuid.UUID(account_id)
    except ValueError:
        raise InvalidArgument.field("id", "is not a valid id") from None
    async with db.unit_of_work(org) as uow:
        row = await store.soft_delete(uow.conn, org, aid)
        if row is None:
            raise NotFound(f"service account {account_id} not found")
        not_before = time.time()
        event = identity_events_pb2.MembershipChangedEvent(organization_id=str(org), user_id=str(aid),
                                                           change="removed")
        event.not_before.FromNanoseconds(int(not_before * 1_000_000) * 1000)
        uow.publish("identity.membership.changed", event, aggregate_type="service_account", aggregate_id=str(aid))
        uow.audit("identity.service_account.delete", "service_account", str(aid),
                  before={"name": row["name"], "client_id": row["client_id"], "permissions": list(row["permissions"])})
    if revocations is not None:  # this process at once; the others when the broadcast arrives
        revocations.revoke(str(aid), org, not_before)


async def issue_token(db: Database, keys: SigningKeys, ttl: int, client_id: str,
                      client_secret: str) -> tuple[str, datetime]:
    v = Violations()
    if not client_id:
        v.add("client_id", "is required")
    if not client_secret:
        v.add("client_secret", "is required")
    v.raise_if_any()
    org = rules.tenant_of_client_id(client_id)
    if org is None:
        raise Unauthenticated(BAD_CLIENT)
    async with db.unit_of_work(org) as uow:
        row = await store.by_client_id(uow.conn, org, client_id)
    # An unknown client and a wrong secret answer alike.
    if row is None or not rules.secret_matches(client_secret, row["secret_hash"]):
        raise Unauthenticated(BAD_CLIENT)
    now = time.time()
    claims = rules.service_claims(issuer=ISSUER, audience=AUDIENCE, account_id=row["id"], org_id=org,
                                  permissions=list(row["permissions"]), now=now, ttl=ttl)
    return keys.sign(claims), datetime.fromtimestamp(claims["exp"], UTC)
