"""A suspended organization across the suite (issue 17, item 2): identity, crm, comms, ai and
billing refuse its calls within seconds (FAILED_PRECONDITION, ORGANIZATION_SUSPENDED, from the
chassis' replica fed by the broadcast), other tenants are served, its scheduled sends and
workflow steps wait (not dropped) and go on after the reactivation, which restores everything."""

import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from givance.ai.v1 import agent_service_pb2 as aipb
from givance.ai.v1 import agent_service_pb2_grpc
from givance.billing.v1 import subscription_service_pb2 as bpb
from givance.comms.v1 import template_service_pb2 as tpb
from givance.crm.v1 import donor_service_pb2 as dpb
from givance.crm.v1 import workflow_service_pb2 as wpb
from givance.identity.v1 import operator_service_pb2 as opb
from givance.identity.v1 import organization_service_pb2 as orgpb
from google.protobuf import timestamp_pb2

from tests.comms.conftest import Mailbox
from tests.comms.test_delivery import _send, _template
from tests.crm.workflow_support import ST, custom, get_execution, wf
from tests.helpers import error_reason, eventually
from tests.identity.test_suspension import operator

__all__ = ["operator", "wf"]  # fixtures


@pytest.fixture(scope="module")
def mailbox(mail_catcher) -> Mailbox:
    return Mailbox(mail_catcher)


@pytest.fixture(scope="module")
async def ai_agents(hosts):
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{hosts['ai'].bound_port}")
    yield agent_service_pb2_grpc.AgentServiceStub(channel)
    await channel.close()


def _calls(stubs, ai_agents, t):
    """One cheap read per service, as the tenant `t`."""
    return {
        "identity": lambda: stubs.organizations.GetOrganization(orgpb.GetOrganizationRequest(), metadata=t.md),
        "crm": lambda: stubs.donors.ListDonors(dpb.ListDonorsRequest(), metadata=t.md),
        "comms": lambda: stubs.templates.ListTemplates(tpb.ListTemplatesRequest(), metadata=t.md),
        "ai": lambda: ai_agents.ListAgents(aipb.ListAgentsRequest(), metadata=t.md),
        "billing": lambda: stubs.subscriptions.GetSubscription(bpb.GetSubscriptionRequest(), metadata=t.md),
    }


async def _refused(call) -> str | None:
    """The error reason when the call is refused FAILED_PRECONDITION, else None."""
    try:
        await call()
    except grpc.aio.AioRpcError as e:
        if e.code() == grpc.StatusCode.FAILED_PRECONDITION:
            return error_reason(e)
        raise
    return None


async def _served(call) -> bool:
    try:
        await call()
        return True
    except grpc.aio.AioRpcError as e:
        if e.code() == grpc.StatusCode.FAILED_PRECONDITION:
            return False
        raise


async def test_every_service_refuses_a_suspended_tenant_and_serves_it_again_after_reactivation(
        stubs, ai_agents, operator, tenant, other_tenant):
    mine, theirs = _calls(stubs, ai_agents, tenant), _calls(stubs, ai_agents, other_tenant)
    for service, call in mine.items():  # served before
        assert await _served(call), service
    await stubs.operator.SuspendOrganization(opb.SuspendOrganizationRequest(
        organization_id=tenant.org_id, reason="chargebacks under review"), metadata=operator.md)
    for service, call in mine.items():
        reason = await eventually(lambda c=call: _refused(c), timeout=10, what=f"{service} to refuse the tenant")
        assert reason == "ORGANIZATION_SUSPENDED", service
    for service, call in theirs.items():  # other tenants are served meanwhile
        assert await _served(call), service

    await stubs.operator.ReactivateOrganization(opb.ReactivateOrganizationRequest(
        organization_id=tenant.org_id, reason="cleared"), metadata=operator.md)
    for service, call in mine.items():
        await eventually(lambda c=call: _served(c), timeout=10, what=f"{service} to serve the tenant again")


async def test_scheduled_sends_and_workflow_steps_wait_while_suspended_and_resume(
        stubs, wf, mailbox, operator, tenant, other_tenant, admin_db):
    # the suspended tenant's work, scheduled for later: a send and a workflow's step after a wait
    await _template(stubs, tenant)
    later = timestamp_pb2.Timestamp()
    later.FromDatetime(datetime.now(UTC) + timedelta(hours=1))
    held_to = f"held-{uuid.uuid4().hex[:8]}@example.org"
    held = await _send(stubs, tenant, held_to, schedule_time=later)
    w = await custom(wf, tenant, [{"id": "nap", "type": "wait", "duration": "1d"},
                                   {"id": "note", "type": "create_todo", "title": "after the nap"}])
    ex = (await wf.StartWorkflowExecution(wpb.StartWorkflowExecutionRequest(workflow_id=w.id),
                                          metadata=tenant.md)).execution

    async def waiting():
        return (await get_execution(wf, tenant, ex.id)).status == ST.WORKFLOW_EXECUTION_STATUS_WAITING

    await eventually(waiting, what="the execution to wait")
    await stubs.operator.SuspendOrganization(opb.SuspendOrganizationRequest(
        organization_id=tenant.org_id, reason="review"), metadata=operator.md)
    await eventually(lambda: _refused(_calls(stubs, None, tenant)["comms"]), timeout=10, what="comms to hear of it")
    await eventually(lambda: _refused(_calls(stubs, None, tenant)["crm"]), timeout=10, what="crm to hear of it")
    # their time comes (an hour early): due first, before anything another tenant queues now
    await admin_db.execute("UPDATE comms.send_jobs SET due_at = now() - interval '1 hour' WHERE message_id = $1",
                           uuid.UUID(held.id))
    await admin_db.execute("UPDATE crm.workflow_due SET due_at = now() - interval '1 hour' WHERE execution_id = $1",
                           uuid.UUID(ex.id))
    # another tenant's send and workflow step, due after them, go through ...
    await _template(stubs, other_tenant)
    other_to = f"other-{uuid.uuid4().hex[:8]}@example.org"
    await _send(stubs, other_tenant, other_to)
    w2 = await custom(wf, other_tenant, [{"id": "note", "type": "create_todo", "title": "now"}])
    ex2 = (await wf.StartWorkflowExecution(wpb.StartWorkflowExecutionRequest(workflow_id=w2.id),
                                           metadata=other_tenant.md)).execution
    await mailbox.wait_for(other_to)

    async def done2():
        return (await get_execution(wf, other_tenant, ex2.id)).status == ST.WORKFLOW_EXECUTION_STATUS_COMPLETED

    await eventually(done2, what="the other tenant's execution to complete")
    # ... while the suspended tenant's wait, unclaimed and kept
    assert not mailbox.to(held_to)
    job = await admin_db.fetchrow("SELECT attempts, locked_until FROM comms.send_jobs WHERE message_id = $1",
                                  uuid.UUID(held.id))
    assert job is not None and job["attempts"] == 0 and job["locked_until"] is None
    assert await admin_db.fetchval("SELECT status FROM comms.messages WHERE id = $1",
                                   uuid.UUID(held.id)) == "queued"
    due = await admin_db.fetchrow("SELECT lease_until FROM crm.workflow_due WHERE execution_id = $1",
                                  uuid.UUID(ex.id))
    assert due is not None and due["lease_until"] is None

    await stubs.operator.ReactivateOrganization(opb.ReactivateOrganizationRequest(
        organization_id=tenant.org_id, reason="ok"), metadata=operator.md)
    await mailbox.wait_for(held_to)

    async def done():
        try:
            e = await get_execution(wf, tenant, ex.id)
        except grpc.aio.AioRpcError:
            return False  # crm may not have heard of the reactivation yet
        return e.status == ST.WORKFLOW_EXECUTION_STATUS_COMPLETED

    await eventually(done, what="the held execution to complete")
    assert await admin_db.fetchval("SELECT status FROM comms.messages WHERE id = $1",
                                   uuid.UUID(held.id)) in ("sent", "delivered")
