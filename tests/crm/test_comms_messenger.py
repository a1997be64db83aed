"""The real Messenger with crm's own tenant token (its platform service principal, traded at
identity: chassis.tenant_tokens), against comms itself and against a stand-in speaking comms'
wire format (to see refusals); and a workflow's send_message step through it to comms.
"""

import uuid

import grpc
import pytest
from givance.comms.v1 import message_pb2, message_service_pb2, message_service_pb2_grpc
from givance.identity.v1 import audit_service_pb2 as apb
from google.protobuf import json_format

from chassis.tenant_tokens import TenantTokens, dev_secret
from services.crm.providers.comms_messenger import GrpcMessenger
from services.crm.providers.messenger import Message, MessageRefused
from tests.helpers import eventually, new_donor


def crm_tokens(identity_host) -> TenantTokens:
    """crm's development principal (tests/conftest.py sets it up as `make run` does)."""
    return TenantTokens(f"127.0.0.1:{identity_host.bound_port}", "crm", dev_secret("crm"))


class FakeComms(message_service_pb2_grpc.MessageServiceServicer):
    def __init__(self):
        self.requests: list[tuple[message_service_pb2.SendMessageRequest, dict]] = []
        self.by_request_id: dict[str, message_pb2.Message] = {}
        self.refuse: grpc.StatusCode | None = None

    async def SendMessage(self, request, context):
        md = dict(context.invocation_metadata())
        self.requests.append((request, md))
        if self.refuse is not None:
            await context.abort(self.refuse, "refused")
        if request.request_id not in self.by_request_id:
            self.by_request_id[request.request_id] = message_pb2.Message(
                id=str(uuid.uuid4()), donor_id=request.donor_id, template_name=request.template_name,
                status=message_pb2.MESSAGE_STATUS_QUEUED)
        return message_service_pb2.SendMessageResponse(message=self.by_request_id[request.request_id])


@pytest.fixture
async def comms():
    server = grpc.aio.server()
    fake = FakeComms()
    message_service_pb2_grpc.add_MessageServiceServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}", fake
    await server.stop(None)


async def test_sends_through_comms_with_crms_tenant_token_once_per_request_id(stubs, tenant, identity_host,
                                                                               hosts):
    """comms accepts crm's token (its audience), reads the donor from crm with it, and records
    crm as the actor; the token is cached between sends."""
    donor = (await stubs.donors.CreateDonor(new_donor(email="ada.wf@example.org"), metadata=tenant.md)).donor
    tokens = crm_tokens(identity_host)
    messenger = GrpcMessenger.with_tokens(f"127.0.0.1:{hosts['comms'].bound_port}", tokens)
    try:
        msg = Message(tenant_id=uuid.UUID(tenant.org_id), request_id="wf-1-thanks", template="thank-you",
                      variables={"amount": "$10", "date": "today"}, donor_id=donor.id)
        first = await messenger.send(msg)
        again = await messenger.send(msg)
        assert first.message_id == again.message_id and first.delivered and tokens.exchanges == 1
        sent = (await stubs.messages.GetMessage(message_service_pb2.GetMessageRequest(id=first.message_id),
                                                metadata=tenant.md)).message
        assert sent.donor_id == donor.id and sent.template_name == "thank-you"
        assert sent.to_address == "ada.wf@example.org"
    finally:
        await messenger.close()

    async def by_crm():
        got = await stubs.audit.ListActivity(apb.ListActivityRequest(actor_id="service:crm", page_size=50),
                                             metadata=tenant.md)
        return {e.action for e in got.entries} >= {"crm.donor.read", "identity.tenant_token.issue"} and got
    await eventually(by_crm, what="crm as the actor of comms' read of the donor")


async def test_refusals_say_whether_to_try_again(tenant, identity_host, comms):
    address, fake = comms
    tokens = crm_tokens(identity_host)
    messenger = GrpcMessenger.with_tokens(address, tokens)
    try:
        org = uuid.UUID(tenant.org_id)
        await messenger.send(Message(tenant_id=org, request_id="wf-1", template="welcome", variables={"name": "Ada"}))
        [(req, md)] = fake.requests
        assert json_format.MessageToDict(req.variables) == {"name": "Ada"} and req.channel == message_pb2.CHANNEL_EMAIL
        assert md["x-tenant-id"] == tenant.org_id and md["authorization"].startswith("Bearer ")
        fake.refuse = grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(MessageRefused) as refused:
            await messenger.send(Message(tenant_id=org, request_id="wf-2", template="x", variables={}))
        assert not refused.value.retryable
        fake.refuse = grpc.StatusCode.UNAVAILABLE
        with pytest.raises(MessageRefused) as refused:
            await messenger.send(Message(tenant_id=org, request_id="wf-3", template="x", variables={}))
        assert refused.value.retryable
        # a revoked token: tried again, with a fresh one
        fake.refuse = grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(MessageRefused) as refused:
            await messenger.send(Message(tenant_id=org, request_id="wf-4", template="x", variables={}))
        assert refused.value.retryable and len(tokens) == 0
        with pytest.raises(MessageRefused) as refused:  # an organization identity does not know
            await messenger.send(Message(tenant_id=uuid.uuid4(), request_id="wf-5", template="x", variables={}))
        assert not refused.value.retryable and len(fake.requests) == 4
    finally:
        await messenger.close()


async def test_a_gift_starts_a_workflow_that_waits_then_messages_through_comms(stubs, tenant, identity_host, crm_db,
                                                                               comms):
    """Recorded donation -> todo -> a 2-day wait (the test's clock) -> SendMessage to comms."""
    from datetime import UTC, datetime, timedelta

    from givance.crm.v1 import todo_service_pb2, workflow_pb2, workflow_service_pb2, workflow_service_pb2_grpc
    from google.protobuf import struct_pb2

    from chassis.crypto import Keyring
    from services.crm.consumers.workflow_worker import WorkflowWorker
    from services.crm.handlers.workflow_runs import ManualClock
    from services.crm.handlers.workflow_steps import Effects
    from services.crm.settings import CrmSettings
    from tests.helpers import eventually, gift, new_donor, usd

    address, fake = comms
    wf = workflow_service_pb2_grpc.WorkflowServiceStub(stubs.crm_channel)
    definition = struct_pb2.Struct()
    definition.update({"triggers": [{"type": "event", "event": "crm.donation.recorded"}], "steps": [
        {"id": "call", "type": "create_todo", "title": "Call {{donor.first_name}}"},
        {"id": "later", "type": "wait", "duration": "2d"},
        {"id": "thanks", "type": "send_message", "template": "thank-you", "to": "donor",
         "variables": {"amount": "{{event.amount}}"}}]})
    w = (await wf.CreateWorkflow(workflow_service_pb2.CreateWorkflowRequest(workflow=workflow_pb2.Workflow(
        name="thank later", definition=definition)), metadata=tenant.md)).workflow
    await wf.ActivateWorkflow(workflow_service_pb2.ActivateWorkflowRequest(id=w.id), metadata=tenant.md)
    donor = (await stubs.donors.CreateDonor(new_donor(), metadata=tenant.md)).donor
    await stubs.donations.RecordDonation(gift(donor.id, usd(60)), metadata=tenant.md)

    async def waiting():
        exs = (await wf.ListWorkflowExecutions(workflow_service_pb2.ListWorkflowExecutionsRequest(workflow_id=w.id),
                                               metadata=tenant.md)).executions
        return exs[0] if exs and exs[0].status == workflow_pb2.WORKFLOW_EXECUTION_STATUS_WAITING else None

    ex = await eventually(waiting, what="the execution waiting its two days")
    todos = (await stubs.todos.ListTodos(todo_service_pb2.ListTodosRequest(donor_id=donor.id),
                                         metadata=tenant.md)).todos
    assert [t.title for t in todos] == ["Call Ada"] and not fake.requests
    messenger = GrpcMessenger.with_tokens(address, crm_tokens(identity_host))
    clock = ManualClock(datetime.now(UTC) + timedelta(days=1))
    worker = WorkflowWorker(crm_db, Effects(keys=Keyring(CrmSettings().workflow_secret_keys), messenger=messenger),
                            clock=clock)
    try:
        await worker.run_until_idle()
        assert not fake.requests  # a day on: still waiting
        clock.advance(days=1, minutes=1)
        await worker.run_until_idle()
    finally:
        await messenger.close()
    [(req, md)] = fake.requests
    assert req.donor_id == donor.id and req.template_name == "thank-you" and req.request_id == f"wf-{ex.id}-thanks"
    assert json_format.MessageToDict(req.variables) == {"amount": "60"} and md["x-tenant-id"] == tenant.org_id
    done = (await wf.GetWorkflowExecution(workflow_service_pb2.GetWorkflowExecutionRequest(id=ex.id),
                                          metadata=tenant.md)).execution
    assert done.status == workflow_pb2.WORKFLOW_EXECUTION_STATUS_COMPLETED
    assert json_format.MessageToDict(done.context)["steps"]["thanks"]["messenger"] == "comms"
