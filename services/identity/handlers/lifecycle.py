"""A tenant's life as its members see it: a signed-in user creates a further organization (and
owns it); its owner closes it (a grace period, then erasure) or reopens it within the grace
period. Suspension by a platform operator is handlers/suspensions.py; the rules are
domain/lifecycle.py.

Creating publishes `identity.organization.created`, as a sign-up does: crm seeds its donor
journey, billing starts its trial. Closing publishes `identity.organization.closing` and
schedules the erasure (identity.organization_erasures, a due row claimed with FOR UPDATE SKIP
LOCKED by `erase_due_forever`, so it survives restarts and runs once with several replicas);
reopening cancels it (`identity.organization.reopened`). At erase_time identity removes the
organization (marked deleted, its sessions ended, every call for it refused on every service:
a revocation of kind organization labelled `erased`) and publishes
`identity.organization.erased`, for every service to erase the tenant's data (docs/platform-operations.md
says what each does today).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from datetime import UTC, datetime

from givance.events.v1 import identity_events_pb2

from chassis.context import Principal
from chassis.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied, ResourceExhausted, Violations
from chassis.resource import check_request_id
from services.identity.domain import accounts as account_rules
from services.identity.domain import lifecycle as rules
from services.identity.domain import organizations as org_rules
from services.identity.domain import roles
from services.identity.handlers.caller import require_user
from services.identity.handlers.deps import Deps
from services.identity.handlers.rights import actor_is_owner, publish_member_joined
from services.identity.store import accounts as account_store
from services.identity.store import members as member_store
from services.identity.store import organizations as store
from services.identity.store import revocations as revocation_store
from services.identity.store.organizations import Organization

log = logging.getLogger(__name__)

CREATED = "identity.organization.created"
CLOSING = "identity.organization.closing"
REOPENED = "identity.organization.reopened"
ERASED = "identity.organization.erased"
# A user owns at most this many organizations (a sign-up's and the ones they create).
MAX_OWNED = 20
ERASE_BATCH = 10
ERASE_LEASE_SECONDS = 300.0
ERASE_POLL_SECONDS = 60.0


async def create(deps: Deps, principal: Principal, *, name: str, slug: str, request_id: str) -> Organization:
    user_id = require_user(principal, "only a user creates organizations")
    v = Violations()
    name = org_rules.check_name(name, "organization.name", v)
    slug_given = bool(slug.strip())
    slug = org_rules.check_slug(slug, "organization.slug", v) if slug_given else account_rules.slugify(name)
    check_request_id(request_id, v)
    v.raise_if_any()
    if not slug_given and len(slug) < 3:
        slug = f"{slug}-org"
    if request_id:
        async with deps.db.unit_of_work(None, user_id=user_id) as uow:
            earlier = await store.created_by_request(uow.conn, user_id, request_id)
        if earlier is not None:
            return earlier
    for attempt in range(3):
        org_id = uuid.uuid4()
        try:
            async with deps.db.unit_of_work(org_id, user_id=user_id) as uow:
                user = await member_store.user_status(uow.conn, user_id)
                if user is None or not user["is_active"]:
                    raise PermissionDenied("this account is not active", reason="USER_INACTIVE")
                if await store.owned_count(uow.conn, user_id) >= MAX_OWNED:
                    raise ResourceExhausted(f"a user owns at most {MAX_OWNED} organizations",
                                            reason="TOO_MANY_ORGANIZATIONS", metadata={"limit": str(MAX_OWNED)})
                org = await store.insert(uow.conn, org_id, name, slug, user_id, request_id or None)
                await account_store.insert_membership(uow.conn, user_id, org_id, roles.OWNER)
                uow.publish(CREATED, identity_events_pb2.OrganizationCreatedEvent(
                    organization_id=str(org_id), name=name, slug=slug, owner_user_id=str(user_id)),
                    aggregate_type="organization", aggregate_id=str(org_id))
                publish_member_joined(uow, org_id, user_id, roles.OWNER)
                uow.audit("identity.organization.create", "organization", str(org_id),
                          after={"name": name, "slug": slug, "from_organization": str(principal.tenant_id)})
            return org
        except AlreadyExists as exc:
            if exc.reason == "SLUG_TAKEN" and not slug_given and attempt < 2:
                slug = f"{account_rules.slugify(name)[:56]}-{uuid.uuid4().hex[:6]}"
                continue
            if exc.reason == "REQUEST_ID_REUSED":  # a concurrent retry won: its organization
                async with deps.db.unit_of_work(None, user_id=user_id) as uow:
                    earlier = await store.created_by_request(uow.conn, user_id, request_id)
                if earlier is not None:
                    return earlier
            raise
    raise AssertionError("unreachable")


async def _owned(deps: Deps, uow, principal: Principal, doing: str) -> Organization:
    """The caller's organization, locked, when the caller is its owner."""
    org = principal.tenant_id
    row = await store.get(uow.conn, org, for_update=True)
    if row is None:
        raise NotFound("organization not found")
    if not await actor_is_owner(uow, org, principal):
        raise PermissionDenied(f"only an owner {doing} the organization", reason="OWNER_REQUIRED")
    return row


async def close(deps: Deps, principal: Principal, *, confirm_slug: str, reason: str) -> Organization:
    v = Violations()
    reason = reason.strip()
    v.check_text("reason", reason, rules.REASON_MAX)
    if not confirm_slug.strip():
        v.add("confirm_slug", "is required: the organization's slug")
    v.raise_if_any()
    async with deps.db.unit_of_work(principal.tenant_id) as uow:
        row = await _owned(deps, uow, principal, "closes")
        if confirm_slug.strip() != row.slug:
            raise InvalidArgument.field("confirm_slug", "does not match the organization's slug")
        rules.require_state(row.state, rules.ACTIVE, "closed")
        erase_at = datetime.now(UTC) + rules.GRACE
        updated = await store.set_state(uow.conn, row.id, rules.CLOSING, reason, erase_at)
        await store.schedule_erasure(uow.conn, row.id, erase_at)
        event = identity_events_pb2.OrganizationClosingEvent(organization_id=str(row.id),
                                                             owner_user_id=principal.subject)
        event.close_time.FromDatetime(datetime.now(UTC))
        event.erase_time.FromDatetime(erase_at)
        uow.publish(CLOSING, event, aggregate_type="organization", aggregate_id=str(row.id))
        uow.audit("identity.organization.close", "organization", str(row.id), before={"state": row.state},
                  after={"state": rules.CLOSING, "erase_time": erase_at.isoformat(), "reason": reason})
    return updated


async def reopen(deps: Deps, principal: Principal) -> Organization:
    async with deps.db.unit_of_work(principal.tenant_id) as uow:
        row = await _owned(deps, uow, principal, "reopens")
        rules.may_reopen(row.state, row.erase_at, datetime.now(UTC))
        updated = await store.set_state(uow.conn, row.id, rules.ACTIVE, "")
        await store.cancel_erasure(uow.conn, row.id)
        uow.publish(REOPENED, identity_events_pb2.OrganizationReopenedEvent(
            organization_id=str(row.id), owner_user_id=principal.subject),
            aggregate_type="organization", aggregate_id=str(row.id))
        uow.audit("identity.organization.reopen", "organization", str(row.id),
                  before={"state": rules.CLOSING, "erase_time": row.erase_at.isoformat() if row.erase_at else None},
                  after={"state": rules.ACTIVE})
    return updated


async def erase_due(deps: Deps) -> int:
    """One pass: erases the closing organizations whose grace period is over; how many."""
    async with deps.db.unit_of_work(None) as uow:
        due = await store.claim_erasures(uow.conn, ERASE_BATCH, ERASE_LEASE_SECONDS)
    erased = 0
    for org in due:
        since = time.time()
        async with deps.db.unit_of_work(org) as uow:
            if not await store.erase(uow.conn, org):
                continue  # reopened meanwhile
            await revocation_store.suspend(uow.conn, org, since, label=rules.ERASED_LABEL)
            event = identity_events_pb2.OrganizationErasedEvent(organization_id=str(org))
            event.erase_time.FromDatetime(datetime.now(UTC))
            uow.publish(ERASED, event, aggregate_type="organization", aggregate_id=str(org))
            uow.audit("identity.organization.erase", "organization", str(org), before={"state": rules.CLOSING},
                      after={"state": "erased"}, actor_id="identity", actor_kind="system")
        deps.revocations.suspend(org, since, math.inf, label=rules.ERASED_LABEL)
        erased += 1
    return erased


async def erase_due_forever(deps: Deps) -> None:
    """Background (identity's __main__): erasures as they come due."""
    while True:
        try:
            while await erase_due(deps) == ERASE_BATCH:
                pass
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the database may be down; the rows wait
            log.warning("erasing closed organizations failed: %s", exc)
        await asyncio.sleep(ERASE_POLL_SECONDS)
