"""Suspension (issue 17, item 2): a platform operator suspends an organization with a reason and
reactivates it; identity refuses the tenant's calls and issues no token for it; both trails
record it; nobody else (not even the tenant's owner) may call the operator's methods."""

import math
import uuid

import grpc
import pytest
from givance.identity.v1 import audit_service_pb2 as apb
from givance.identity.v1 import identity_service_pb2 as pb
from givance.identity.v1 import operator_service_pb2 as opb
from givance.identity.v1 import organization_pb2, tenant_token_service_pb2_grpc
from givance.identity.v1 import organization_service_pb2 as orgpb
from givance.identity.v1 import revocation_service_pb2 as rpb
from givance.identity.v1 import session_service_pb2 as spb
from givance.identity.v1 import tenant_token_service_pb2 as tpb

from chassis.context import Principal
from chassis.revocation import ORGANIZATION, Revocation, RevocationList
from chassis.tenant_tokens import dev_secret
from tests.conftest import PASSWORD, Tenant
from tests.helpers import error_reason, eventually, fails, invalid
from tests.identity.test_platform import login, operators, trail

Org = organization_pb2.Organization


@pytest.fixture
async def operator(stubs) -> Tenant:
    """A fresh user made a platform operator by the command, signed in again to carry platform.*."""
    someone = await stubs.sign_up("Operators Ltd")
    await operators("grant", someone.email, "platform.organizations.read", "platform.organizations.suspend",
                    "platform.audit.read")
    return await login(stubs, someone)


def _principal(org: uuid.UUID) -> Principal:
    return Principal(subject=str(uuid.uuid4()), tenant_id=org, role="owner", permissions=("*",), token_id="t",
                     expires_at=2e9, issued_at=1.0)


async def test_the_replica_keeps_the_latest_suspension_whatever_the_order_of_news():
    """A broadcast and a listing may arrive in either order: a reactivation heard before the
    (older) listing of the suspension still wins; a later suspension replaces an ended one."""
    org, other = uuid.uuid4(), uuid.uuid4()
    lst = RevocationList()
    lst.suspend(org, 100.0, 200.0)  # the reactivation's broadcast first
    lst.add(Revocation(ORGANIZATION, org, "", 100.0, math.inf))  # then a listing from before it
    assert not lst.suspended(org, now=250.0) and lst.suspended(org, now=150.0)
    lst.suspend(org, 300.0)  # suspended again
    assert lst.suspended(org, now=10_000.0) and lst.suspended_organizations() == [org]
    e = await fails_check(lst, _principal(org))
    assert e.reason == "ORGANIZATION_SUSPENDED" and e.code == "FAILED_PRECONDITION"
    await lst.check(_principal(other))  # other tenants pass
    lst.suspend(org, 300.0, 400.0)
    lst.prune(now=500.0)
    assert lst.suspended_organizations() == [] and len(lst) == 0


async def fails_check(lst: RevocationList, principal: Principal):
    try:
        await lst.check(principal)
    except Exception as exc:
        return exc
    raise AssertionError("the check passed")


async def test_no_tenant_member_may_call_the_operators_methods(stubs, tenant, other_tenant, admin_db):
    for caller in (tenant, other_tenant):  # the organization's own owner too
        for call in (stubs.operator.SuspendOrganization(opb.SuspendOrganizationRequest(
                         organization_id=tenant.org_id, reason="x"), metadata=caller.md),
                     stubs.operator.ReactivateOrganization(opb.ReactivateOrganizationRequest(
                         organization_id=tenant.org_id, reason="x"), metadata=caller.md),
                     stubs.operator.GetTenant(opb.GetTenantRequest(organization_id=tenant.org_id),
                                              metadata=caller.md)):
            e = await fails(call, grpc.StatusCode.PERMISSION_DENIED)
            assert error_reason(e) == "PERMISSION_MISSING"
    assert await admin_db.fetchval("SELECT state FROM identity.organizations WHERE id = $1",
                                   uuid.UUID(tenant.org_id)) == "active"


async def test_an_operator_whose_grant_lacks_suspend_cannot_suspend(stubs, admin_db):
    reviewer = await stubs.sign_up("Reviewers")
    await operators("grant", reviewer.email, "platform.kyc.review")
    reviewer = await login(stubs, reviewer)
    e = await fails(stubs.operator.SuspendOrganization(opb.SuspendOrganizationRequest(
        organization_id=reviewer.org_id, reason="x"), metadata=reviewer.md), grpc.StatusCode.PERMISSION_DENIED)
    assert error_reason(e) == "PERMISSION_MISSING"


async def test_bad_input_is_named_and_nothing_is_written(stubs, operator, tenant, admin_db):
    def suspend(**kw):
        return stubs.operator.SuspendOrganization(opb.SuspendOrganizationRequest(**kw), metadata=operator.md)

    await invalid(suspend(organization_id="not-an-id", reason="fraud"), "organization_id")
    await invalid(suspend(organization_id=tenant.org_id, reason="  "), "reason")
    await invalid(suspend(organization_id=tenant.org_id, reason="x" * 501), "reason")
    await invalid(stubs.operator.ReactivateOrganization(opb.ReactivateOrganizationRequest(
        organization_id=tenant.org_id), metadata=operator.md), "reason")
    await fails(suspend(organization_id=str(uuid.uuid4()), reason="fraud"), grpc.StatusCode.NOT_FOUND)
    # reactivating an active organization: a rule, named
    e = await fails(stubs.operator.ReactivateOrganization(opb.ReactivateOrganizationRequest(
        organization_id=tenant.org_id, reason="ok"), metadata=operator.md), grpc.StatusCode.FAILED_PRECONDITION)
    assert error_reason(e) == "ORGANIZATION_NOT_SUSPENDED"
    assert await admin_db.fetchval("SELECT state FROM identity.organizations WHERE id = $1",
                                   uuid.UUID(tenant.org_id)) == "active"
    assert await admin_db.fetchval("SELECT count(*) FROM identity.revocations WHERE kind = 'organization' "
                                   "AND tenant_id = $1", uuid.UUID(tenant.org_id)) == 0


async def test_a_suspended_tenant_is_refused_gets_no_token_and_reactivation_restores(stubs, operator, tenant,
                                                                                     other_tenant):
    sa = await stubs.sessions.CreateServiceAccount(spb.CreateServiceAccountRequest(
        name="robot", permissions=["identity.organizations.read"]), metadata=tenant.md)
    listed_before = (await stubs.revocations.ListRevocations(rpb.ListRevocationsRequest())).list_time

    org = (await stubs.operator.SuspendOrganization(opb.SuspendOrganizationRequest(
        organization_id=tenant.org_id, reason="  unpaid invoices, fraud review "), metadata=operator.md)).organization
    assert (org.state, org.state_reason) == (Org.STATE_SUSPENDED, "unpaid invoices, fraud review")

    e = await fails(stubs.organizations.GetOrganization(orgpb.GetOrganizationRequest(), metadata=tenant.md),
                    grpc.StatusCode.FAILED_PRECONDITION)
    assert error_reason(e) == "ORGANIZATION_SUSPENDED"
    await stubs.organizations.GetOrganization(orgpb.GetOrganizationRequest(), metadata=other_tenant.md)
    # no token for it: login, refresh, a service account's
    tenant_tokens = tenant_token_service_pb2_grpc.TenantTokenServiceStub(stubs.identity_channel)
    for call in (stubs.identity.Login(pb.LoginRequest(email=tenant.email, password=PASSWORD)),
                 tenant_tokens.IssueTenantToken(tpb.IssueTenantTokenRequest(  # a platform service's, for it
                     client_id="ai", client_secret=dev_secret("ai"), organization_id=tenant.org_id)),
                 stubs.identity.RefreshToken(pb.RefreshTokenRequest(refresh_token=tenant.refresh_token)),
                 stubs.identity.IssueServiceToken(pb.IssueServiceTokenRequest(
                     client_id=sa.service_account.client_id, client_secret=sa.client_secret))):
        e = await fails(call, grpc.StatusCode.FAILED_PRECONDITION)
        assert error_reason(e) == "ORGANIZATION_SUSPENDED"
    e = await fails(stubs.operator.SuspendOrganization(opb.SuspendOrganizationRequest(
        organization_id=tenant.org_id, reason="again"), metadata=operator.md), grpc.StatusCode.FAILED_PRECONDITION)
    assert error_reason(e) == "ORGANIZATION_NOT_ACTIVE"
    seen = (await stubs.operator.GetTenant(opb.GetTenantRequest(organization_id=tenant.org_id),
                                           metadata=operator.md)).organization
    assert seen.state == Org.STATE_SUSPENDED and seen.name == "Hope Fund"
    # every service lists it (no expiry while it lasts)
    (listed,) = [r for r in (await stubs.revocations.ListRevocations(rpb.ListRevocationsRequest())).revocations
                 if r.organization_id == tenant.org_id and r.kind == rpb.Revocation.KIND_ORGANIZATION]
    assert not listed.HasField("expire_time")

    org = (await stubs.operator.ReactivateOrganization(opb.ReactivateOrganizationRequest(
        organization_id=tenant.org_id, reason="paid"), metadata=operator.md)).organization
    assert (org.state, org.state_reason) == (Org.STATE_ACTIVE, "")
    await stubs.organizations.GetOrganization(orgpb.GetOrganizationRequest(), metadata=tenant.md)  # the old token
    await login(stubs, tenant)
    # a listing from before shows the suspension ended; a full listing leaves it out
    (ended,) = [r for r in (await stubs.revocations.ListRevocations(rpb.ListRevocationsRequest(
        since=listed_before))).revocations if r.organization_id == tenant.org_id]
    assert ended.expire_time.ToNanoseconds() > ended.not_before.ToNanoseconds()
    assert tenant.org_id not in {r.organization_id for r in (await stubs.revocations.ListRevocations(
        rpb.ListRevocationsRequest())).revocations if r.kind == rpb.Revocation.KIND_ORGANIZATION}

    # both trails: the platform's (with the reasons) and the organization's own (the operator as actor)
    mine = [x for x in await trail(stubs, operator, "platform.organization.") if x.resource_id == tenant.org_id]
    assert [x.action for x in mine] == ["platform.organization.reactivate", "platform.organization.read",
                                        "platform.organization.suspend"]
    assert mine[2].detail["reason"] == "unpaid invoices, fraud review" and mine[2].actor == operator.user_id

    async def tenant_trail():
        entries = (await stubs.audit.ListActivity(apb.ListActivityRequest(action="identity.organization."),
                                                  metadata=tenant.md)).entries
        return [x for x in entries if x.action in ("identity.organization.suspend",
                                                   "identity.organization.reactivate")]
    entries = await eventually(lambda: _two(tenant_trail), what="both entries in the tenant's trail")
    assert [x.action for x in entries] == ["identity.organization.reactivate", "identity.organization.suspend"]
    assert {x.actor_id for x in entries} == {operator.user_id}


async def _two(read):
    entries = await read()
    return entries if len(entries) == 2 else None
