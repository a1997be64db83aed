"""Workflow definitions through WorkflowService: create (and copy a template), validation naming
the path inside the definition, update with FieldMask and etag, status moves, list, events,
and another tenant seeing none of it."""

import copy
import uuid

import grpc
import pytest
from givance.crm.v1 import workflow_pb2, workflow_service_pb2_grpc
from givance.crm.v1 import workflow_service_pb2 as pb
from givance.events.v1 import crm_events_pb2
from google.protobuf import field_mask_pb2, json_format, struct_pb2

from chassis import events
from tests.crm.every_rpc import EveryRpc
from tests.helpers import fails, invalid

DEFINITION = {
    "triggers": [{"type": "event", "event": "crm.donation.recorded",
                  "conditions": [{"field": "event.amount", "op": "gte", "value": 50}]},
                 {"type": "manual"}],
    "steps": [
        {"id": "call", "type": "create_todo", "title": "Call {{donor.name}}", "due_in": "2d"},
        {"id": "pause", "type": "wait", "duration": "3d"},
        {"id": "note", "type": "set_field", "field": "vars.called", "value": True},
    ],
}


def _struct(d: dict) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(d)
    return s


def workflow(definition: dict | None = None, **kw) -> workflow_pb2.Workflow:
    kw.setdefault("name", "Thank new donors")
    w = workflow_pb2.Workflow(**kw)
    if definition is not None:
        w.definition.CopyFrom(_struct(definition))
    return w


@pytest.fixture(scope="module")
def wf(stubs):
    return workflow_service_pb2_grpc.WorkflowServiceStub(stubs.crm_channel)


async def _create(wf, tenant, definition=DEFINITION, **kw) -> workflow_pb2.Workflow:
    rid = kw.pop("request_id", "")
    req = pb.CreateWorkflowRequest(workflow=workflow(definition, **kw), request_id=rid)
    return (await wf.CreateWorkflow(req, metadata=tenant.md)).workflow


async def _events(admin_db, aggregate_id: str, prefix: str = "crm.workflow.") -> list[str]:
    rows = await admin_db.fetch("SELECT routing_key FROM crm.outbox WHERE aggregate_id = $1 AND routing_key LIKE $2 "
                                "ORDER BY id", aggregate_id, prefix + "%")
    return [r["routing_key"] for r in rows]


async def test_create_get_and_the_secret_shown_once(wf, tenant, admin_db):
    created = await _create(wf, tenant, description="first gifts", category="donor_care")
    assert created.status == workflow_pb2.WORKFLOW_STATUS_DRAFT and created.version == 1 and created.etag
    assert json_format.MessageToDict(created.definition) == DEFINITION
    assert len(created.webhook_secret) >= 40
    got = (await wf.GetWorkflow(pb.GetWorkflowRequest(id=created.id), metadata=tenant.md)).workflow
    assert got.webhook_secret == "" and got.name == "Thank new donors" and got.creator_id == tenant.user_id
    sealed = await admin_db.fetchval("SELECT webhook_secret_sealed FROM crm.workflows WHERE id = $1",
                                     uuid.UUID(created.id))
    assert created.webhook_secret not in sealed and sealed.startswith("v1.")
    assert await _events(admin_db, created.id) == ["crm.workflow.created"]
    body = await admin_db.fetchval("SELECT body FROM crm.outbox WHERE aggregate_id = $1 AND routing_key = $2",
                                   created.id, "crm.workflow.created")
    event = events.unpack(events.parse(body), crm_events_pb2.WorkflowCreatedEvent)
    assert event.workflow_id == created.id and event.status == "draft" and event.version == 1


async def test_create_with_request_id_is_idempotent(wf, tenant):
    rid = f"wf-{uuid.uuid4()}"
    first = await _create(wf, tenant, request_id=rid)
    again = await _create(wf, tenant, request_id=rid)
    assert again.id == first.id and again.webhook_secret == ""


@pytest.mark.parametrize(("mutate", "path"), [
    (lambda d: d["steps"][2].update(type="teleport"), "workflow.definition.steps[2].type"),
    (lambda d: d["steps"][2].update(next="call"), "workflow.definition.steps[2].next"),
    (lambda d: d["steps"][0].update(next="nowhere"), "workflow.definition.steps[0].next"),
    (lambda d: d["triggers"][0]["conditions"][0].update(op="roughly"),
     "workflow.definition.triggers[0].conditions[0].op"),
    (lambda d: d["triggers"][0]["conditions"][0].update(field="password"),
     "workflow.definition.triggers[0].conditions[0].field"),
    (lambda d: d["triggers"][0].update(event="crm.secret.leaked"), "workflow.definition.triggers[0].event"),
    (lambda d: d["triggers"].append({"type": "cron"}), "workflow.definition.triggers[2].type"),
    (lambda d: d["steps"][1].update(duration="forever"), "workflow.definition.steps[1].duration"),
    (lambda d: d["steps"][0].pop("title"), "workflow.definition.steps[0].title"),
    (lambda d: d["steps"][1].update(id="call"), "workflow.definition.steps[1].id"),
    (lambda d: d["steps"].append({"id": "hook", "type": "webhook", "url": "ftp://x"}),
     "workflow.definition.steps[3].url"),
    (lambda d: d.update(steps=[]), "workflow.definition.steps"),
    (lambda d: d["steps"][0].update(title="x" * 70_000), "workflow.definition"),
])
async def test_bad_definitions_name_the_path_and_write_nothing(wf, tenant, admin_db, mutate, path):
    d = copy.deepcopy(DEFINITION)
    mutate(d)
    await invalid(wf.CreateWorkflow(pb.CreateWorkflowRequest(workflow=workflow(d)), metadata=tenant.md), path)
    assert await admin_db.fetchval("SELECT count(*) FROM crm.workflows WHERE organization_id = $1",
                                   uuid.UUID(tenant.org_id)) == 0


async def test_cycle_is_named(wf, tenant):
    d = copy.deepcopy(DEFINITION)
    d["steps"][2]["next"] = "pause"
    err = await invalid(wf.CreateWorkflow(pb.CreateWorkflowRequest(workflow=workflow(d)), metadata=tenant.md),
                        "workflow.definition.steps[2].next")
    assert "cycle" in err.details() or "cycle" in str(err.trailing_metadata())


async def test_missing_template_and_bad_fields(wf, tenant):
    await invalid(wf.CreateWorkflow(pb.CreateWorkflowRequest(workflow=workflow(template_id="templates/nope")),
                                    metadata=tenant.md), "workflow.template_id")
    await invalid(wf.CreateWorkflow(pb.CreateWorkflowRequest(workflow=workflow(template_id=str(uuid.uuid4()))),
                                    metadata=tenant.md), "workflow.template_id")
    await invalid(wf.CreateWorkflow(pb.CreateWorkflowRequest(workflow=workflow(DEFINITION, name=" ")),
                                    metadata=tenant.md), "workflow.name")
    await invalid(wf.CreateWorkflow(pb.CreateWorkflowRequest(workflow=workflow(None)), metadata=tenant.md),
                  "workflow.definition")


async def test_templates_listed_and_copied(wf, tenant):
    listed = (await wf.ListWorkflowTemplates(pb.ListWorkflowTemplatesRequest(), metadata=tenant.md)).templates
    names = [t.name for t in listed]
    assert names == ["templates/first-gift-thank-you", "templates/lapsed-donor-sequence",
                     "templates/major-gift-cultivation"]
    copied = (await wf.CreateWorkflow(pb.CreateWorkflowRequest(workflow=workflow_pb2.Workflow(
        template_id="templates/major-gift-cultivation", variables=_struct({"threshold": 5000}))),
        metadata=tenant.md)).workflow
    assert copied.name == "Major gift: move to cultivation" and copied.template_id == "templates/major-gift-cultivation"
    assert json_format.MessageToDict(copied.variables) == {"assignee_id": "", "threshold": 5000}
    assert json_format.MessageToDict(copied.definition) == json_format.MessageToDict(listed[2].definition)
    # an organization's own template: copied, never activated itself
    own = await _create(wf, tenant, name="Onboarding template", is_template=True)
    await fails(wf.ActivateWorkflow(pb.ActivateWorkflowRequest(id=own.id), metadata=tenant.md),
                grpc.StatusCode.FAILED_PRECONDITION)
    child = (await wf.CreateWorkflow(pb.CreateWorkflowRequest(workflow=workflow_pb2.Workflow(template_id=own.id)),
                                     metadata=tenant.md)).workflow
    assert child.name == "Onboarding template" and not child.is_template and child.template_id == own.id
    assert json_format.MessageToDict(child.definition) == DEFINITION
    only = (await wf.ListWorkflows(pb.ListWorkflowsRequest(templates_only=True), metadata=tenant.md)).workflows
    assert [w.id for w in only] == [own.id]


async def test_update_versions_etag_and_events(wf, tenant, admin_db):
    w = await _create(wf, tenant)
    renamed = (await wf.UpdateWorkflow(pb.UpdateWorkflowRequest(
        workflow=workflow_pb2.Workflow(id=w.id, etag=w.etag, name="Renamed"),
        update_mask=field_mask_pb2.FieldMask(paths=["name"])), metadata=tenant.md)).workflow
    assert renamed.name == "Renamed" and renamed.version == 1 and renamed.etag != w.etag
    await fails(wf.UpdateWorkflow(pb.UpdateWorkflowRequest(
        workflow=workflow_pb2.Workflow(id=w.id, etag=w.etag, name="Stale"),
        update_mask=field_mask_pb2.FieldMask(paths=["name"])), metadata=tenant.md), grpc.StatusCode.ABORTED)
    d = copy.deepcopy(DEFINITION)
    d["steps"][1]["duration"] = "5d"
    bumped = (await wf.UpdateWorkflow(pb.UpdateWorkflowRequest(
        workflow=workflow(d, id=w.id, etag=renamed.etag),
        update_mask=field_mask_pb2.FieldMask(paths=["definition"])), metadata=tenant.md)).workflow
    assert bumped.version == 2 and bumped.name == "Renamed"
    d["steps"][0]["type"] = "dance"
    await invalid(wf.UpdateWorkflow(pb.UpdateWorkflowRequest(
        workflow=workflow(d, id=w.id), update_mask=field_mask_pb2.FieldMask(paths=["definition"])),
        metadata=tenant.md), "workflow.definition.steps[0].type")
    await invalid(wf.UpdateWorkflow(pb.UpdateWorkflowRequest(
        workflow=workflow(d, id=w.id), update_mask=field_mask_pb2.FieldMask(paths=["status"])),
        metadata=tenant.md), "update_mask")
    versions = await admin_db.fetch("SELECT definition_version FROM crm.workflow_versions WHERE workflow_id = $1 "
                                    "ORDER BY 1", uuid.UUID(w.id))
    assert [r[0] for r in versions] == [1, 2]
    assert await _events(admin_db, w.id) == ["crm.workflow.created", "crm.workflow.updated", "crm.workflow.updated"]


async def test_status_moves(wf, tenant, admin_db):
    w = await _create(wf, tenant)
    await fails(wf.PauseWorkflow(pb.PauseWorkflowRequest(id=w.id), metadata=tenant.md),
                grpc.StatusCode.FAILED_PRECONDITION)
    active = (await wf.ActivateWorkflow(pb.ActivateWorkflowRequest(id=w.id, etag=w.etag),
                                        metadata=tenant.md)).workflow
    assert active.status == workflow_pb2.WORKFLOW_STATUS_ACTIVE
    await fails(wf.ActivateWorkflow(pb.ActivateWorkflowRequest(id=w.id, etag=w.etag), metadata=tenant.md),
                grpc.StatusCode.ABORTED)
    paused = (await wf.PauseWorkflow(pb.PauseWorkflowRequest(id=w.id), metadata=tenant.md)).workflow
    assert paused.status == workflow_pb2.WORKFLOW_STATUS_PAUSED
    await wf.ActivateWorkflow(pb.ActivateWorkflowRequest(id=w.id), metadata=tenant.md)
    archived = (await wf.ArchiveWorkflow(pb.ArchiveWorkflowRequest(id=w.id), metadata=tenant.md)).workflow
    assert archived.status == workflow_pb2.WORKFLOW_STATUS_ARCHIVED
    await fails(wf.UpdateWorkflow(pb.UpdateWorkflowRequest(
        workflow=workflow_pb2.Workflow(id=w.id, name="x"), update_mask=field_mask_pb2.FieldMask(paths=["name"])),
        metadata=tenant.md), grpc.StatusCode.FAILED_PRECONDITION)
    await fails(wf.ActivateWorkflow(pb.ActivateWorkflowRequest(id=w.id), metadata=tenant.md),
                grpc.StatusCode.FAILED_PRECONDITION)
    assert await _events(admin_db, w.id) == ["crm.workflow.created", "crm.workflow.activated",
                                             "crm.workflow.paused", "crm.workflow.activated", "crm.workflow.paused"]
    audit = await admin_db.fetch("SELECT body FROM crm.outbox WHERE aggregate_id = $1 AND routing_key = $2",
                                 w.id, "crm.audit.recorded")
    assert len(audit) == 5  # create, activate, pause, activate, archive


async def test_list_pages_and_filters_and_delete(wf, tenant):
    ids = [(await _create(wf, tenant, name=f"W{i}", category="a" if i % 2 else "b")).id for i in range(5)]
    seen, token = [], ""
    while True:
        page = await wf.ListWorkflows(pb.ListWorkflowsRequest(page_size=2, page_token=token), metadata=tenant.md)
        seen += [w.id for w in page.workflows]
        token = page.next_page_token
        if not token:
            break
    assert seen == ids[::-1]
    cat = await wf.ListWorkflows(pb.ListWorkflowsRequest(category="a"), metadata=tenant.md)
    assert [w.id for w in cat.workflows] == [ids[3], ids[1]]
    await invalid(wf.ListWorkflows(pb.ListWorkflowsRequest(page_size=-1), metadata=tenant.md), "page_size")
    await wf.DeleteWorkflow(pb.DeleteWorkflowRequest(id=ids[0]), metadata=tenant.md)
    await fails(wf.GetWorkflow(pb.GetWorkflowRequest(id=ids[0]), metadata=tenant.md), grpc.StatusCode.NOT_FOUND)
    left = await wf.ListWorkflows(pb.ListWorkflowsRequest(), metadata=tenant.md)
    assert ids[0] not in [w.id for w in left.workflows]


async def test_other_tenant_sees_nothing(wf, tenant, other_tenant):
    w = await _create(wf, tenant)
    await wf.ActivateWorkflow(pb.ActivateWorkflowRequest(id=w.id), metadata=tenant.md)
    ex = (await wf.StartWorkflowExecution(pb.StartWorkflowExecutionRequest(workflow_id=w.id),
                                          metadata=tenant.md)).execution
    md = other_tenant.md
    every = EveryRpc(wf, pb, "WorkflowService")
    nf = grpc.StatusCode.NOT_FOUND
    for call in (
        every.GetWorkflow(pb.GetWorkflowRequest(id=w.id), metadata=md),
        every.UpdateWorkflow(pb.UpdateWorkflowRequest(workflow=workflow_pb2.Workflow(id=w.id, name="Mallory"),
                                                      update_mask=field_mask_pb2.FieldMask(paths=["name"])),
                             metadata=md),
        every.DeleteWorkflow(pb.DeleteWorkflowRequest(id=w.id), metadata=md),
        every.ActivateWorkflow(pb.ActivateWorkflowRequest(id=w.id), metadata=md),
        every.PauseWorkflow(pb.PauseWorkflowRequest(id=w.id), metadata=md),
        every.ArchiveWorkflow(pb.ArchiveWorkflowRequest(id=w.id), metadata=md),
        every.StartWorkflowExecution(pb.StartWorkflowExecutionRequest(workflow_id=w.id), metadata=md),
        every.GetWorkflowExecution(pb.GetWorkflowExecutionRequest(id=ex.id), metadata=md),
        every.RetryWorkflowExecution(pb.RetryWorkflowExecutionRequest(id=ex.id), metadata=md),
        every.CancelWorkflowExecution(pb.CancelWorkflowExecutionRequest(id=ex.id), metadata=md),
    ):
        await fails(call, nf)
    await invalid(every.CreateWorkflow(pb.CreateWorkflowRequest(workflow=workflow_pb2.Workflow(template_id=w.id)),
                                       metadata=md), "workflow.template_id")
    assert not (await every.ListWorkflows(pb.ListWorkflowsRequest(), metadata=md)).workflows
    assert not (await every.ListWorkflowExecutions(pb.ListWorkflowExecutionsRequest(), metadata=md)).executions
    assert not (await every.ListWorkflowExecutions(pb.ListWorkflowExecutionsRequest(workflow_id=w.id),
                                                   metadata=md)).executions
    # the templates shipped with crm are everyone's
    assert len((await every.ListWorkflowTemplates(pb.ListWorkflowTemplatesRequest(), metadata=md)).templates) == 3
    # its own workflow is its own
    own = (await every.CreateWorkflow(pb.CreateWorkflowRequest(workflow=workflow(DEFINITION)), metadata=md)).workflow
    assert [x.id for x in (await every.ListWorkflows(pb.ListWorkflowsRequest(), metadata=md)).workflows] == [own.id]
    assert not every.uncalled()  # every WorkflowService RPC, as the other tenant
    got = (await wf.GetWorkflow(pb.GetWorkflowRequest(id=w.id), metadata=tenant.md)).workflow
    assert got.name == "Thank new donors" and got.status == workflow_pb2.WORKFLOW_STATUS_ACTIVE


async def test_no_token_is_unauthenticated(wf, tenant):
    await fails(wf.ListWorkflows(pb.ListWorkflowsRequest(), metadata=(("x-tenant-id", tenant.org_id),)),
                grpc.StatusCode.UNAUTHENTICATED)
