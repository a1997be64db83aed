"""Usage counted from the suite's events, once each; entitlements published and enforced in crm
from crm's own replica."""

import uuid

import grpc
from givance.billing.v1 import plan_pb2
from givance.billing.v1 import plan_service_pb2 as ppb
from givance.billing.v1 import subscription_service_pb2 as spb
from givance.billing.v1 import usage_service_pb2 as upb
from givance.crm.v1 import donor_service_pb2 as dpb
from google.protobuf import empty_pb2

from tests.billing.conftest import error_info, publish_event, subscribed
from tests.helpers import eventually, fails, gift, new_donor


async def _usage(stubs, tenant) -> dict[str, tuple[int, int]]:
    resp = await stubs.usage.GetUsage(upb.GetUsageRequest(), metadata=tenant.md)
    return {c.metric: (c.quantity, c.limit) for c in resp.counters}


async def test_usage_is_counted_once_per_event(stubs, tenant):
    await subscribed(stubs, tenant)
    donor = (await stubs.donors.CreateDonor(new_donor(email="u1@example.org"), metadata=tenant.md)).donor
    await stubs.donations.RecordDonation(gift(donor.id), metadata=tenant.md)
    # comms is not in this suite yet: its routing key is bound all the same; a redelivered event counts once
    event_id = await publish_event("comms.email.sent", empty_pb2.Empty(), tenant)
    await publish_event("comms.email.sent", empty_pb2.Empty(), tenant, event_id=event_id)
    await publish_event("comms.email.sent", empty_pb2.Empty(), tenant)

    async def counted():
        u = await _usage(stubs, tenant)
        return u if (u["donors"][0], u["donations"][0], u["emails"][0], u["members"][0]) == (1, 1, 2, 1) else None

    usage = await eventually(counted, what="the usage counters")
    assert usage["donors"][1] == 10000 and usage["members"][1] == 5  # the starter plan's limits
    ent = await stubs.usage.GetEntitlements(upb.GetEntitlementsRequest(), metadata=tenant.md)
    assert ent.plan_code == "starter" and ent.entitlements.donors == 10000


async def test_crm_refuses_donors_over_the_plans_limit_from_its_replica(stubs, tenant, operator, admin_db):
    await subscribed(stubs, tenant)
    await eventually(lambda: admin_db.fetchval("SELECT donors FROM crm.entitlements WHERE organization_id = $1",
                                               uuid.UUID(tenant.org_id)), what="crm's replica")
    small = plan_pb2.Plan(code=f"small-{uuid.uuid4().hex[:6]}", name="Small", currency_code="USD", trial_days=14,
                          prices=[plan_pb2.Price(billing_cycle=plan_pb2.BILLING_CYCLE_MONTHLY,
                                                 amount={"currency_code": "USD", "units": 5})],
                          entitlements=plan_pb2.Entitlements(seats=1, donors=2))
    small = (await stubs.plans.PublishPlan(ppb.PublishPlanRequest(plan=small), metadata=operator.md)).plan
    await stubs.subscriptions.ChangePlan(spb.ChangePlanRequest(plan_id=small.id), metadata=tenant.md)
    await eventually(lambda: admin_db.fetchval("SELECT donors = 2 FROM crm.entitlements WHERE organization_id = $1",
                                               uuid.UUID(tenant.org_id)), what="the new limit in crm's replica")
    for i in range(2):
        await stubs.donors.CreateDonor(new_donor(first_name=f"D{i}"), metadata=tenant.md)
    err = await fails(stubs.donors.CreateDonor(new_donor(first_name="Third"), metadata=tenant.md),
                      grpc.StatusCode.RESOURCE_EXHAUSTED)
    info = error_info(err)
    assert info.reason == "PLAN_LIMIT_EXCEEDED" and info.metadata["limit"] == "donors"
    assert info.metadata["maximum"] == "2" and info.metadata["plan"] == small.code
    listed = await stubs.donors.ListDonors(dpb.ListDonorsRequest(), metadata=tenant.md)
    assert len(listed.donors) == 2  # nothing written


async def test_an_organization_billing_has_not_spoken_for_is_not_limited(stubs, tenant, admin_db):
    """The replica is crm's own: without it (billing down, or not yet heard from) crm does not block."""
    await subscribed(stubs, tenant)
    await eventually(lambda: admin_db.fetchval("SELECT 1 FROM crm.entitlements WHERE organization_id = $1",
                                               uuid.UUID(tenant.org_id)), what="crm's replica")
    await admin_db.execute("DELETE FROM crm.entitlements WHERE organization_id = $1", uuid.UUID(tenant.org_id))
    await stubs.donors.CreateDonor(new_donor(), metadata=tenant.md)


async def test_identity_refuses_an_invitation_past_the_plans_seats(stubs, tenant, operator, admin_db):
    from givance.identity.v1 import membership_service_pb2 as mpb

    await subscribed(stubs, tenant)
    two = plan_pb2.Plan(code=f"duo-{uuid.uuid4().hex[:6]}", name="Duo", currency_code="USD", trial_days=14,
                        prices=[plan_pb2.Price(billing_cycle=plan_pb2.BILLING_CYCLE_MONTHLY,
                                               amount={"currency_code": "USD", "units": 5})],
                        entitlements=plan_pb2.Entitlements(seats=2, donors=-1))
    two = (await stubs.plans.PublishPlan(ppb.PublishPlanRequest(plan=two), metadata=operator.md)).plan
    await stubs.subscriptions.ChangePlan(spb.ChangePlanRequest(plan_id=two.id), metadata=tenant.md)
    await eventually(lambda: admin_db.fetchval("SELECT seats = 2 FROM identity.entitlements WHERE organization_id = $1",
                                               uuid.UUID(tenant.org_id)), what="identity's replica of the seats")
    # the owner and one invitation take the two seats
    await stubs.members.CreateInvitation(mpb.CreateInvitationRequest(email="one@example.org", role="staff"),
                                         metadata=tenant.md)
    err = await fails(stubs.members.CreateInvitation(mpb.CreateInvitationRequest(email="two@example.org",
                                                                                 role="staff"), metadata=tenant.md),
                      grpc.StatusCode.RESOURCE_EXHAUSTED)
    info = error_info(err)
    assert info.reason == "PLAN_LIMIT_EXCEEDED" and info.metadata["limit"] == "seats"
    assert info.metadata["maximum"] == "2"
    # inviting the same person again replaces their invitation: no new seat
    await stubs.members.CreateInvitation(mpb.CreateInvitationRequest(email="one@example.org", role="viewer"),
                                         metadata=tenant.md)
