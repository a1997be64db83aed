"""A platform operator suspends and reactivates an organization (OperatorService).

A suspension is one transaction: the organization's state (suspended, with the operator's
reason), a row of identity.revocations of kind organization (which every service lists at start
and after every reconnect), `identity.organization.suspended` (which every service's revocation
listener hears within moments: chassis.revocation), an entry in the platform trail and one in
the organization's own trail. After the commit this process refuses the tenant's calls at once.
From then on every service answers the tenant's calls FAILED_PRECONDITION,
ORGANIZATION_SUSPENDED; identity issues no token for it (login, switch, refresh, service
accounts, platform services' tenant tokens); comms' sends and crm's workflow runs for it wait in
their tables (they are claimed again after the reactivation, nothing is dropped).

A reactivation ends the suspension it names (its start): the row's expiry and
`identity.organization.reactivated`, both trails again.
"""

from __future__ import annotations

import uuid

from givance.events.v1 import identity_events_pb2

from chassis.context import Principal
from chassis.errors import NotFound, Violations
from chassis.resource import parse_id
from chassis.revocation import REACTIVATED_ROUTING_KEY, SUSPENDED_ROUTING_KEY
from services.identity.domain import lifecycle as rules
from services.identity.handlers import grants, platform
from services.identity.handlers.caller import actor_id
from services.identity.handlers.deps import Deps
from services.identity.store import organizations as store
from services.identity.store import revocations as revocation_store
from services.identity.store.organizations import Organization

READ = "platform.organizations.read"
SUSPEND = "platform.organizations.suspend"


def _ts(target, seconds: float) -> None:
    target.FromNanoseconds(int(seconds * 1_000_000) * 1000)


def _request(organization_id: str, reason: str | None) -> tuple[uuid.UUID, str]:
    v = Violations()
    org = parse_id(organization_id, "organization_id", v)
    clean = rules.check_reason(reason, "reason", v) if reason is not None else ""
    v.raise_if_any()
    assert org is not None
    return org, clean


async def _locked(uow, org: uuid.UUID) -> Organization:
    row = await store.get(uow.conn, org, for_update=True)
    if row is None:
        raise NotFound("organization not found")
    return row


async def get_tenant(deps: Deps, principal: Principal, organization_id: str) -> Organization:
    org, _ = _request(organization_id, None)
    async with deps.db.unit_of_work(org) as uow:
        await platform.require(uow, principal, READ)
        row = await store.get(uow.conn, org)
        if row is None:
            raise NotFound("organization not found")
        await platform.record(uow, principal, "platform.organization.read", "organization", str(org), {})
    return row


async def suspend(deps: Deps, principal: Principal, organization_id: str, reason: str) -> Organization:
    org, reason = _request(organization_id, reason)
    async with deps.db.unit_of_work(org) as uow:
        operator = await platform.require(uow, principal, SUSPEND)
        row = await _locked(uow, org)
        rules.require_state(row.state, rules.ACTIVE, "suspended")
        since = grants.issue_time()
        updated = await store.set_state(uow.conn, org, rules.SUSPENDED, reason)
        await revocation_store.suspend(uow.conn, org, since)
        event = identity_events_pb2.OrganizationSuspendedEvent(organization_id=str(org), reason=reason,
                                                               operator_id=str(operator))
        _ts(event.suspend_time, since)
        uow.publish(SUSPENDED_ROUTING_KEY, event, aggregate_type="organization", aggregate_id=str(org))
        await platform.record(uow, principal, "platform.organization.suspend", "organization", str(org),
                              {"reason": reason, "before": row.state})
        uow.audit("identity.organization.suspend", "organization", str(org), before={"state": row.state},
                  after={"state": rules.SUSPENDED, "reason": reason}, actor_id=str(actor_id(principal)))
    deps.revocations.suspend(org, since)  # this process at once; the others through the broadcast
    return updated


async def reactivate(deps: Deps, principal: Principal, organization_id: str, reason: str) -> Organization:
    org, reason = _request(organization_id, reason)
    async with deps.db.unit_of_work(org) as uow:
        operator = await platform.require(uow, principal, SUSPEND)
        row = await _locked(uow, org)
        rules.require_state(row.state, rules.SUSPENDED, "reactivated")
        since = await revocation_store.suspension_start(uow.conn, org)
        until = grants.issue_time()
        updated = await store.set_state(uow.conn, org, rules.ACTIVE, "")
        await revocation_store.end_suspension(uow.conn, org, until)
        event = identity_events_pb2.OrganizationReactivatedEvent(organization_id=str(org), reason=reason,
                                                                 operator_id=str(operator))
        _ts(event.suspend_time, since if since is not None else 0.0)
        _ts(event.reactivate_time, until)
        uow.publish(REACTIVATED_ROUTING_KEY, event, aggregate_type="organization", aggregate_id=str(org))
        await platform.record(uow, principal, "platform.organization.reactivate", "organization", str(org),
                              {"reason": reason, "suspended_for": row.state_reason})
        uow.audit("identity.organization.reactivate", "organization", str(org),
                  before={"state": rules.SUSPENDED, "reason": row.state_reason},
                  after={"state": rules.ACTIVE, "reason": reason}, actor_id=str(actor_id(principal)))
    if since is not None:
        deps.revocations.suspend(org, since, until)
    return updated
