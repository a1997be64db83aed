"""A tenant's life as its members see it (issue 17, item 2): a signed-in user creates a further
organization and owns it (its trial starts as a sign-up's); its owner closes it (closing, a
grace period), reopens it, or lets the grace period run out (erased: refused everywhere)."""

import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from givance.billing.v1 import subscription_pb2
from givance.billing.v1 import subscription_service_pb2 as bpb
from givance.identity.v1 import identity_service_pb2 as pb
from givance.identity.v1 import organization_pb2
from givance.identity.v1 import organization_service_pb2 as opb
from givance.identity.v1 import session_service_pb2 as spb

from services.identity.handlers import lifecycle
from tests.conftest import PASSWORD, Tenant
from tests.helpers import error_reason, eventually, fails, invalid

Org = organization_pb2.Organization


def _create(stubs, t: Tenant, name="Second Fund", slug="", request_id=""):
    return stubs.organizations.CreateOrganization(opb.CreateOrganizationRequest(
        organization=Org(name=name, slug=slug), request_id=request_id), metadata=t.md)


async def _switch(stubs, t: Tenant, org_id: str) -> Tenant:
    tokens = (await stubs.identity.SwitchOrganization(pb.SwitchOrganizationRequest(organization_id=org_id),
                                                      metadata=t.md)).tokens
    return Tenant(org_id=org_id, user_id=t.user_id, email=t.email, access_token=tokens.access_token,
                  refresh_token=tokens.refresh_token)


async def _outbox(admin_db, org_id: str) -> list[str]:
    return [r[0] for r in await admin_db.fetch(
        "SELECT routing_key FROM identity.outbox WHERE aggregate_id = $1 "
        "AND routing_key LIKE 'identity.organization.%' ORDER BY id", org_id)]


async def test_a_signed_in_user_creates_a_further_organization_and_owns_it(stubs, tenant, other_tenant):
    org = (await _create(stubs, tenant, request_id="second-1")).organization
    assert (org.name, org.state) == ("Second Fund", Org.STATE_ACTIVE) and org.slug.startswith("second-fund")
    again = (await _create(stubs, tenant, request_id="second-1")).organization  # a retry: the same one
    assert again.id == org.id
    mine = await stubs.organizations.ListMyOrganizations(opb.ListMyOrganizationsRequest(), metadata=tenant.md)
    assert {tenant.org_id, org.id} <= {o.id for o in mine.organizations}
    owner = await _switch(stubs, tenant, org.id)
    # the trial starts as at sign-up (billing hears identity.organization.created)
    async def trial():
        try:
            sub = (await stubs.subscriptions.GetSubscription(bpb.GetSubscriptionRequest(),
                                                             metadata=owner.md)).subscription
        except grpc.aio.AioRpcError:
            return None
        return sub if sub.status == subscription_pb2.SUBSCRIPTION_STATUS_TRIAL else None
    assert await eventually(trial, what="the new organization's trial")
    # nobody else sees or enters it
    theirs = await stubs.organizations.ListMyOrganizations(opb.ListMyOrganizationsRequest(),
                                                           metadata=other_tenant.md)
    assert org.id not in {o.id for o in theirs.organizations}
    e = await fails(stubs.identity.SwitchOrganization(pb.SwitchOrganizationRequest(organization_id=org.id),
                                                      metadata=other_tenant.md), grpc.StatusCode.PERMISSION_DENIED)
    assert error_reason(e) == "NOT_A_MEMBER"
    # the same request id of another user is theirs, not this one
    assert (await _create(stubs, other_tenant, request_id="second-1")).organization.id != org.id


async def test_bad_input_is_named_and_nothing_is_written(stubs, tenant, admin_db):
    before = await admin_db.fetchval("SELECT count(*) FROM identity.organizations WHERE created_by = $1",
                                     uuid.UUID(tenant.user_id))
    await invalid(_create(stubs, tenant, name="  "), "organization.name")
    await invalid(_create(stubs, tenant, name="x" * 201), "organization.name")
    await invalid(_create(stubs, tenant, slug="No Way!"), "organization.slug")
    await invalid(_create(stubs, tenant, request_id="r" * 101), "request_id")
    assert await admin_db.fetchval("SELECT count(*) FROM identity.organizations WHERE created_by = $1",
                                   uuid.UUID(tenant.user_id)) == before
    taken = (await _create(stubs, tenant, name="Taken", slug=f"taken-{uuid.uuid4().hex[:6]}")).organization
    e = await fails(_create(stubs, tenant, name="Other", slug=taken.slug), grpc.StatusCode.ALREADY_EXISTS)
    assert error_reason(e) == "SLUG_TAKEN"


async def test_only_the_owner_closes_and_reopens_within_the_grace_period(stubs, tenant, admin_db):
    org = (await stubs.organizations.GetOrganization(opb.GetOrganizationRequest(), metadata=tenant.md)).organization
    sa = await stubs.sessions.CreateServiceAccount(spb.CreateServiceAccountRequest(
        name="closer", permissions=["identity.organizations.write"]), metadata=tenant.md)
    robot = (await stubs.identity.IssueServiceToken(pb.IssueServiceTokenRequest(
        client_id=sa.service_account.client_id, client_secret=sa.client_secret))).access_token
    robot_md = (("authorization", f"Bearer {robot}"), ("x-tenant-id", tenant.org_id))
    e = await fails(stubs.organizations.CloseOrganization(opb.CloseOrganizationRequest(confirm_slug=org.slug),
                                                          metadata=robot_md), grpc.StatusCode.PERMISSION_DENIED)
    assert error_reason(e) == "OWNER_REQUIRED"
    await invalid(stubs.organizations.CloseOrganization(opb.CloseOrganizationRequest(confirm_slug="other-slug"),
                                                        metadata=tenant.md), "confirm_slug")
    await invalid(stubs.organizations.CloseOrganization(opb.CloseOrganizationRequest(), metadata=tenant.md),
                  "confirm_slug")
    await invalid(stubs.organizations.CloseOrganization(opb.CloseOrganizationRequest(
        confirm_slug=org.slug, reason="r" * 501), metadata=tenant.md), "reason")
    e = await fails(stubs.organizations.ReopenOrganization(opb.ReopenOrganizationRequest(), metadata=tenant.md),
                    grpc.StatusCode.FAILED_PRECONDITION)
    assert error_reason(e) == "ORGANIZATION_NOT_CLOSING"
    assert await _outbox(admin_db, tenant.org_id) == ["identity.organization.created"]

    closing = (await stubs.organizations.CloseOrganization(opb.CloseOrganizationRequest(
        confirm_slug=org.slug, reason="merging with a sister charity"), metadata=tenant.md)).organization
    assert closing.state == Org.STATE_CLOSING
    left = closing.erase_time.ToDatetime(tzinfo=UTC) - datetime.now(UTC)
    assert timedelta(days=29) < left <= timedelta(days=30)
    # it works on meanwhile (its members may still take their data), and says it is closing
    seen = (await stubs.organizations.GetOrganization(opb.GetOrganizationRequest(), metadata=tenant.md)).organization
    assert seen.state == Org.STATE_CLOSING and seen.erase_time == closing.erase_time
    e = await fails(stubs.organizations.CloseOrganization(opb.CloseOrganizationRequest(confirm_slug=org.slug),
                                                          metadata=tenant.md), grpc.StatusCode.FAILED_PRECONDITION)
    assert error_reason(e) == "ORGANIZATION_NOT_ACTIVE"
    assert await admin_db.fetchval("SELECT count(*) FROM identity.organization_erasures WHERE tenant_id = $1",
                                   uuid.UUID(tenant.org_id)) == 1

    reopened = (await stubs.organizations.ReopenOrganization(opb.ReopenOrganizationRequest(),
                                                             metadata=tenant.md)).organization
    assert reopened.state == Org.STATE_ACTIVE and not reopened.HasField("erase_time")
    assert await admin_db.fetchval("SELECT count(*) FROM identity.organization_erasures WHERE tenant_id = $1",
                                   uuid.UUID(tenant.org_id)) == 0
    assert await _outbox(admin_db, tenant.org_id) == ["identity.organization.created", "identity.organization.closing",
                                                      "identity.organization.reopened"]


@pytest.fixture
def identity_deps(identity_host):
    return next(r.servicer.deps for r in identity_host.registrations if hasattr(r.servicer, "deps"))


async def test_when_the_grace_period_ends_the_organization_is_erased_and_refused(stubs, tenant, admin_db,
                                                                                 identity_deps):
    second = (await _create(stubs, tenant, name="Short Lived")).organization
    owner = await _switch(stubs, tenant, second.id)
    await stubs.organizations.CloseOrganization(opb.CloseOrganizationRequest(confirm_slug=second.slug),
                                                metadata=owner.md)
    # the grace period is over (a month, in a moment)
    await admin_db.execute("UPDATE identity.organizations SET erase_at = now() - interval '1 second' WHERE id = $1",
                           uuid.UUID(second.id))
    e = await fails(stubs.organizations.ReopenOrganization(opb.ReopenOrganizationRequest(), metadata=owner.md),
                    grpc.StatusCode.FAILED_PRECONDITION)
    assert error_reason(e) == "GRACE_PERIOD_OVER"
    await admin_db.execute("UPDATE identity.organization_erasures SET due_at = now() - interval '1 second' "
                           "WHERE tenant_id = $1", uuid.UUID(second.id))
    assert await lifecycle.erase_due(identity_deps) >= 1

    e = await fails(stubs.organizations.GetOrganization(opb.GetOrganizationRequest(), metadata=owner.md),
                    grpc.StatusCode.FAILED_PRECONDITION)
    assert error_reason(e) == "ORGANIZATION_ERASED"
    for call in (stubs.identity.Login(pb.LoginRequest(email=tenant.email, password=PASSWORD,
                                                      organization_id=second.id)),
                 stubs.identity.RefreshToken(pb.RefreshTokenRequest(refresh_token=owner.refresh_token))):
        await fails(call)
    mine = await stubs.organizations.ListMyOrganizations(opb.ListMyOrganizationsRequest(), metadata=tenant.md)
    assert second.id not in {o.id for o in mine.organizations}
    await stubs.organizations.GetOrganization(opb.GetOrganizationRequest(), metadata=tenant.md)  # the first lives
    assert (await _outbox(admin_db, second.id))[-1] == "identity.organization.erased"
    assert await admin_db.fetchval("SELECT count(*) FROM identity.refresh_tokens WHERE organization_id = $1",
                                   uuid.UUID(second.id)) == 0
    assert await admin_db.fetchval("SELECT count(*) FROM identity.organization_erasures WHERE tenant_id = $1",
                                   uuid.UUID(second.id)) == 0
