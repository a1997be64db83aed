"""WorkflowService: proto in, handler call, proto out."""

from __future__ import annotations

import json

from givance.crm.v1 import workflow_pb2, workflow_service_pb2_grpc
from givance.crm.v1 import workflow_service_pb2 as pb
from google.protobuf import json_format, struct_pb2

from chassis import context
from chassis.convert import timestamp
from chassis.crypto import Keyring
from chassis.db import Database
from chassis.errors import InvalidArgument
from chassis.resource import etag
from services.crm.handlers import workflows as handlers
from services.crm.handlers.workflows import WorkflowFields
from services.crm.providers.message_templates import TemplateCatalog
from services.crm.store.workflows import Execution, Workflow

_STATUS_IN = {
    workflow_pb2.WORKFLOW_STATUS_UNSPECIFIED: None, workflow_pb2.WORKFLOW_STATUS_DRAFT: "draft",
    workflow_pb2.WORKFLOW_STATUS_ACTIVE: "active", workflow_pb2.WORKFLOW_STATUS_PAUSED: "paused",
    workflow_pb2.WORKFLOW_STATUS_ARCHIVED: "archived",
}
_STATUS_OUT = {v: k for k, v in _STATUS_IN.items() if v}
_EX_STATUS_IN = {
    workflow_pb2.WORKFLOW_EXECUTION_STATUS_UNSPECIFIED: None,
    workflow_pb2.WORKFLOW_EXECUTION_STATUS_RUNNING: "running",
    workflow_pb2.WORKFLOW_EXECUTION_STATUS_WAITING: "waiting",
    workflow_pb2.WORKFLOW_EXECUTION_STATUS_COMPLETED: "completed",
    workflow_pb2.WORKFLOW_EXECUTION_STATUS_FAILED: "failed",
    workflow_pb2.WORKFLOW_EXECUTION_STATUS_CANCELLED: "cancelled",
}
_EX_STATUS_OUT = {v: k for k, v in _EX_STATUS_IN.items() if v}


def _struct(value: dict | None) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    if value:
        s.update(json.loads(json.dumps(value, default=str)))
    return s


def _dict(s: struct_pb2.Struct) -> dict:
    return json_format.MessageToDict(s)


def fields_from_proto(w: workflow_pb2.Workflow) -> WorkflowFields:
    return WorkflowFields(
        name=w.name, description=w.description, category=w.category,
        definition=_dict(w.definition) if w.HasField("definition") else None,
        variables=_dict(w.variables) if w.HasField("variables") else None,
        is_template=w.is_template, template_id=w.template_id)


def workflow_to_proto(w: Workflow, webhook_secret: str = "") -> workflow_pb2.Workflow:
    return workflow_pb2.Workflow(
        id=str(w.id), organization_id=str(w.organization_id), name=w.name, description=w.description or "",
        category=w.category or "", definition=_struct(w.definition), variables=_struct(w.variables),
        is_template=w.is_template, template_id=w.template_id or "", status=_STATUS_OUT[w.status],
        version=w.definition_version, creator_id=str(w.created_by or ""), create_time=timestamp(w.created_at),
        update_time=timestamp(w.updated_at), etag=etag(w.version), webhook_secret=webhook_secret)


def execution_to_proto(e: Execution) -> workflow_pb2.WorkflowExecution:
    log = []
    for entry in e.log:
        item = workflow_pb2.WorkflowLogEntry(step_id=entry.get("step_id", ""), outcome=entry.get("outcome", ""),
                                             message=entry.get("message", ""), output=_struct(entry.get("output")))
        item.time.FromJsonString(entry["time"].replace("+00:00", "Z"))
        log.append(item)
    return workflow_pb2.WorkflowExecution(
        id=str(e.id), organization_id=str(e.organization_id), workflow_id=str(e.workflow_id),
        workflow_version=e.workflow_version, trigger_event=e.trigger_event, trigger_data=_struct(e.trigger_data),
        context=_struct(e.context), status=_EX_STATUS_OUT[e.status], progress=e.progress,
        current_step=e.current_step or "", donor_id=str(e.donor_id or ""), log=log, error=e.error or "",
        attempts=e.attempts, start_time=timestamp(e.started_at), end_time=timestamp(e.ended_at),
        update_time=timestamp(e.updated_at), next_run_time=timestamp(e.next_run_at))


def _status(value: int, table: dict, field: str) -> str | None:
    if value not in table:
        raise InvalidArgument.field(field, f"unknown status {value}")
    return table[value]


def _tenant():
    return context.current().tenant_id


class WorkflowServicer(workflow_service_pb2_grpc.WorkflowServiceServicer):
    def __init__(self, db: Database, keys: Keyring, catalog: TemplateCatalog = handlers.UNCHECKED):
        self.db = db
        self.keys = keys
        self.catalog = catalog  # the organization's message templates (comms), checked on save

    async def CreateWorkflow(self, request: pb.CreateWorkflowRequest, ctx) -> pb.CreateWorkflowResponse:
        created = await handlers.create_workflow(self.db, self.keys, _tenant(), fields_from_proto(request.workflow),
                                                 request.request_id, self.catalog)
        return pb.CreateWorkflowResponse(workflow=workflow_to_proto(created.workflow, created.webhook_secret))

    async def GetWorkflow(self, request: pb.GetWorkflowRequest, ctx) -> pb.GetWorkflowResponse:
        return pb.GetWorkflowResponse(workflow=workflow_to_proto(await handlers.get_workflow(self.db, _tenant(),
                                                                                             request.id)))

    async def ListWorkflows(self, request: pb.ListWorkflowsRequest, ctx) -> pb.ListWorkflowsResponse:
        status = _status(request.status, _STATUS_IN, "status")
        if len(request.category) > 100:
            raise InvalidArgument.field("category", "must be at most 100 characters")
        rows, token = await handlers.list_workflows(self.db, _tenant(), status=status, category=request.category,
                                                    templates_only=request.templates_only,
                                                    page_size=request.page_size, page_token=request.page_token)
        return pb.ListWorkflowsResponse(workflows=[workflow_to_proto(r) for r in rows], next_page_token=token)

    async def UpdateWorkflow(self, request: pb.UpdateWorkflowRequest, ctx) -> pb.UpdateWorkflowResponse:
        row = await handlers.update_workflow(self.db, _tenant(), request.workflow.id, request.workflow.etag,
                                             fields_from_proto(request.workflow), list(request.update_mask.paths),
                                             self.catalog)
        return pb.UpdateWorkflowResponse(workflow=workflow_to_proto(row))

    async def DeleteWorkflow(self, request: pb.DeleteWorkflowRequest, ctx) -> pb.DeleteWorkflowResponse:
        await handlers.delete_workflow(self.db, _tenant(), request.id, request.etag)
        return pb.DeleteWorkflowResponse()

    async def ActivateWorkflow(self, request: pb.ActivateWorkflowRequest, ctx) -> pb.ActivateWorkflowResponse:
        row = await handlers.move_workflow(self.db, _tenant(), "activate", request.id, request.etag)
        return pb.ActivateWorkflowResponse(workflow=workflow_to_proto(row))

    async def PauseWorkflow(self, request: pb.PauseWorkflowRequest, ctx) -> pb.PauseWorkflowResponse:
        row = await handlers.move_workflow(self.db, _tenant(), "pause", request.id, request.etag)
        return pb.PauseWorkflowResponse(workflow=workflow_to_proto(row))

    async def ArchiveWorkflow(self, request: pb.ArchiveWorkflowRequest, ctx) -> pb.ArchiveWorkflowResponse:
        row = await handlers.move_workflow(self.db, _tenant(), "archive", request.id, request.etag)
        return pb.ArchiveWorkflowResponse(workflow=workflow_to_proto(row))

    async def ListWorkflowTemplates(self, request: pb.ListWorkflowTemplatesRequest,
                                    ctx) -> pb.ListWorkflowTemplatesResponse:
        return pb.ListWorkflowTemplatesResponse(templates=[
            workflow_pb2.WorkflowTemplate(name=t.name, title=t.title, description=t.description, category=t.category,
                                          definition=_struct(t.definition), variables=_struct(t.variables))
            for t in handlers.list_templates()])

    async def StartWorkflowExecution(self, request: pb.StartWorkflowExecutionRequest,
                                     ctx) -> pb.StartWorkflowExecutionResponse:
        row = await handlers.start_execution(self.db, _tenant(), request.workflow_id, request.donor_id,
                                             _dict(request.input) if request.HasField("input") else None,
                                             request.request_id)
        return pb.StartWorkflowExecutionResponse(execution=execution_to_proto(row))

    async def GetWorkflowExecution(self, request: pb.GetWorkflowExecutionRequest,
                                   ctx) -> pb.GetWorkflowExecutionResponse:
        row = await handlers.get_execution(self.db, _tenant(), request.id)
        return pb.GetWorkflowExecutionResponse(execution=execution_to_proto(row))

    async def ListWorkflowExecutions(self, request: pb.ListWorkflowExecutionsRequest,
                                     ctx) -> pb.ListWorkflowExecutionsResponse:
        status = _status(request.status, _EX_STATUS_IN, "status")
        rows, token = await handlers.list_executions(self.db, _tenant(), workflow_id=request.workflow_id,
                                                     donor_id=request.donor_id, status=status,
                                                     page_size=request.page_size, page_token=request.page_token)
        return pb.ListWorkflowExecutionsResponse(executions=[execution_to_proto(r) for r in rows],
                                                 next_page_token=token)

    async def RetryWorkflowExecution(self, request: pb.RetryWorkflowExecutionRequest,
                                     ctx) -> pb.RetryWorkflowExecutionResponse:
        row = await handlers.retry_execution(self.db, _tenant(), request.id)
        return pb.RetryWorkflowExecutionResponse(execution=execution_to_proto(row))

    async def CancelWorkflowExecution(self, request: pb.CancelWorkflowExecutionRequest,
                                      ctx) -> pb.CancelWorkflowExecutionResponse:
        row = await handlers.cancel_execution(self.db, _tenant(), request.id)
        return pb.CancelWorkflowExecutionResponse(execution=execution_to_proto(row))
