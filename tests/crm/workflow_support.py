"""What the workflow execution tests share: the stub, workers on a manual clock, a messenger
that counts (and can hang), and short ways to start and read executions."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from givance.crm.v1 import todo_service_pb2 as todo_pb
from givance.crm.v1 import workflow_pb2, workflow_service_pb2_grpc
from givance.crm.v1 import workflow_service_pb2 as pb
from google.protobuf import struct_pb2

from chassis.crypto import Keyring
from services.crm.consumers.workflow_worker import WorkflowWorker
from services.crm.handlers.workflow_runs import ManualClock
from services.crm.handlers.workflow_steps import Effects
from services.crm.providers.messenger import Message, RecordingMessenger, Sent
from services.crm.providers.webhooks import HttpWebhooks
from services.crm.settings import CrmSettings
from tests.helpers import new_donor

ST = workflow_pb2


def struct(d: dict) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(d)
    return s


@pytest.fixture(scope="module")
def wf(stubs):
    return workflow_service_pb2_grpc.WorkflowServiceStub(stubs.crm_channel)


class CountingMessenger:
    """A Messenger that keeps what it was asked (as comms would see it) and can hang mid-send."""

    def __init__(self, hang: bool = False):
        self.calls: list[Message] = []
        self.hang = hang
        self.called = asyncio.Event()

    async def send(self, message: Message) -> Sent:
        self.calls.append(message)
        self.called.set()
        if self.hang:
            await asyncio.Event().wait()  # the process "dies" here: the test cancels the task
        return Sent(message_id=f"m-{message.request_id}", delivered=True, provider="test")


def make_worker(crm_db, clock, messenger=None) -> WorkflowWorker:
    keys = Keyring(CrmSettings().workflow_secret_keys)
    return WorkflowWorker(crm_db, Effects(keys=keys, messenger=messenger or RecordingMessenger(),
                                          webhooks=HttpWebhooks(timeout=5)), clock=clock)


def ahead(days: float) -> ManualClock:
    return ManualClock(datetime.now(UTC) + timedelta(days=days))


async def from_template(wf, tenant, name: str, **variables) -> workflow_pb2.Workflow:
    w = (await wf.CreateWorkflow(pb.CreateWorkflowRequest(workflow=workflow_pb2.Workflow(
        template_id=name, variables=struct(variables))), metadata=tenant.md)).workflow
    return (await wf.ActivateWorkflow(pb.ActivateWorkflowRequest(id=w.id), metadata=tenant.md)).workflow


async def custom(wf, tenant, steps: list[dict], triggers=None) -> workflow_pb2.Workflow:
    d = {"triggers": triggers or [{"type": "manual"}], "steps": steps}
    w = workflow_pb2.Workflow(name="custom")
    w.definition.CopyFrom(struct(d))
    created = (await wf.CreateWorkflow(pb.CreateWorkflowRequest(workflow=w), metadata=tenant.md)).workflow
    active = (await wf.ActivateWorkflow(pb.ActivateWorkflowRequest(id=created.id), metadata=tenant.md)).workflow
    active.webhook_secret = created.webhook_secret
    return active


async def list_executions(wf, tenant, **kw) -> list[workflow_pb2.WorkflowExecution]:
    return list((await wf.ListWorkflowExecutions(pb.ListWorkflowExecutionsRequest(**kw),
                                                 metadata=tenant.md)).executions)


async def get_execution(wf, tenant, eid) -> workflow_pb2.WorkflowExecution:
    return (await wf.GetWorkflowExecution(pb.GetWorkflowExecutionRequest(id=eid), metadata=tenant.md)).execution


async def list_todos(stubs, tenant, donor_id: str = "") -> list:
    return list((await stubs.todos.ListTodos(todo_pb.ListTodosRequest(donor_id=donor_id),
                                             metadata=tenant.md)).todos)


async def make_donor(stubs, tenant, **kw):
    return (await stubs.donors.CreateDonor(new_donor(**kw), metadata=tenant.md)).donor


async def handled(admin_db, tenant, routing_key: str, n: int) -> bool:
    """The trigger consumer has handled the tenant's n-th event of this type (its inbox row)."""
    return await admin_db.fetchval(
        "SELECT count(*) FROM crm.inbox i JOIN crm.outbox o ON o.event_id = i.event_id "
        "WHERE i.consumer = 'crm.workflow_triggers' AND o.tenant_id = $1 AND o.routing_key = $2",
        uuid.UUID(tenant.org_id), routing_key) >= n


async def routing_keys(admin_db, execution_id: str) -> list[str]:
    rows = await admin_db.fetch("SELECT routing_key FROM crm.outbox WHERE aggregate_id = $1 "
                                "AND routing_key LIKE 'crm.workflow.%' ORDER BY id", execution_id)
    return [r[0] for r in rows]


async def completed(wf, tenant, eid):
    ex = await get_execution(wf, tenant, eid)
    return ex if ex.status == ST.WORKFLOW_EXECUTION_STATUS_COMPLETED else None


def pb_get(donor_id):
    from givance.crm.v1 import donor_service_pb2

    return donor_service_pb2.GetDonorRequest(id=donor_id)
