"""Workflows on the firm side's events, through the real bus: a new client and a signed
document start their workflows, whose steps run once even when the event is delivered again;
another tenant's events start nothing; an event or a field outside the catalog is refused."""

import uuid

import aio_pika
from givance.crm.v1 import client_pb2, document_pb2
from givance.crm.v1 import client_service_pb2 as cpb
from givance.crm.v1 import document_service_pb2 as dpb
from givance.crm.v1 import workflow_service_pb2 as pb

from chassis import events
from tests.crm.test_documents import PDF, upload
from tests.crm.workflow_support import ST, custom, handled, list_executions, list_todos, wf
from tests.helpers import eventually, invalid

__all__ = ["wf"]  # the fixture

ONBOARD = [{"type": "event", "event": "crm.client.created",
            "conditions": [{"field": "client.client_type", "op": "eq", "value": "business"},
                           {"field": "event.status", "op": "in", "value": ["active", "prospect"]}]}]
ONBOARD_STEPS = [
    {"id": "welcome", "type": "create_todo", "title": "Welcome pack for {{client.name}} ({{event.client_number}})",
     "assignee": "{{client.assigned_manager_id}}", "due_in": "1d"},
    {"id": "done", "type": "set_field", "field": "vars.welcomed", "value": True},
]
SIGNED = [{"type": "event", "event": "crm.document.signed",
           "conditions": [{"field": "event.status", "op": "eq", "value": "signed"},
                          {"field": "document.document_type", "op": "eq", "value": "engagement_letter"}]}]
SIGNED_STEPS = [{"id": "file", "type": "create_todo",
                 "title": "File the signed {{document.name}} of {{client.name}}, version {{event.version}}"}]


async def _client(stubs, tenant, name: str, **kw) -> client_pb2.Client:
    kw.setdefault("client_type", client_pb2.CLIENT_TYPE_BUSINESS)
    c = client_pb2.Client(name=name, client_number=f"C-{uuid.uuid4().hex[:6]}", **kw)
    return (await stubs.clients.CreateClient(cpb.CreateClientRequest(client=c), metadata=tenant.md)).client


async def _redeliver(admin_db, tenant, routing_key: str, aggregate_id: str) -> None:
    """The event exactly as crm's relay published it, once more (the broker redelivering it)."""
    import os

    body = await admin_db.fetchval("SELECT body FROM crm.outbox WHERE routing_key = $1 AND aggregate_id = $2",
                                   routing_key, aggregate_id)
    conn = await aio_pika.connect_robust(os.environ["RABBITMQ_URL"])
    try:
        exchange = await (await conn.channel()).get_exchange("givance.events")
        for _ in range(2):
            await exchange.publish(aio_pika.Message(bytes(body), headers={events.TENANT_HEADER: tenant.org_id}),
                                   routing_key=routing_key)
    finally:
        await conn.close()


async def _done(wf, tenant, workflow_id: str, n: int) -> list | None:
    """The workflow's executions once n of them completed."""
    executions = await list_executions(wf, tenant, workflow_id=workflow_id)
    finished = [e for e in executions if e.status == ST.WORKFLOW_EXECUTION_STATUS_COMPLETED]
    return executions if len(finished) >= n else None


async def test_a_new_client_starts_its_onboarding_once(stubs, wf, tenant, other_tenant, admin_db):
    w = await custom(wf, tenant, ONBOARD_STEPS, triggers=ONBOARD)
    acme = await _client(stubs, tenant, "Acme Bakery LLC", assigned_manager_id=tenant.user_id)
    [ex] = await eventually(lambda: _done(wf, tenant, w.id, 1), what="the onboarding to complete")
    assert ex.trigger_event == "crm.client.created" and not ex.donor_id
    assert [e.step_id for e in ex.log if e.outcome == "completed" and e.step_id] == ["welcome", "done"]
    todos = [t for t in await list_todos(stubs, tenant) if t.title.startswith("Welcome pack")]
    assert [(t.title, t.assignee_id) for t in todos] == [
        (f"Welcome pack for Acme Bakery LLC ({acme.client_number})", tenant.user_id)]
    # the same event again, twice, through the bus; then a second client as a marker behind them
    await _redeliver(admin_db, tenant, "crm.client.created", acme.id)
    await _client(stubs, tenant, "Bolt Bikes")
    await eventually(lambda: handled(admin_db, tenant, "crm.client.created", 2), what="the second client handled")
    done = await eventually(lambda: _done(wf, tenant, w.id, 2), what="the second onboarding")
    assert len(done) == 2
    titles = sorted(t.title for t in await list_todos(stubs, tenant) if t.title.startswith("Welcome pack"))
    assert len(titles) == 2 and titles[0].startswith("Welcome pack for Acme") and "Bolt Bikes" in titles[1]
    # an individual client does not meet the conditions; another tenant's business client starts nothing here
    await _client(stubs, tenant, "Dana Doe", client_type=client_pb2.CLIENT_TYPE_INDIVIDUAL)
    await _client(stubs, other_tenant, "Other Firm's Client")
    await eventually(lambda: handled(admin_db, tenant, "crm.client.created", 3), what="the third client handled")
    await eventually(lambda: handled(admin_db, other_tenant, "crm.client.created", 1), what="the other's handled")
    assert len(await list_executions(wf, tenant, workflow_id=w.id)) == 2
    assert not [t for t in await list_todos(stubs, other_tenant) if t.title.startswith("Welcome pack")]
    assert await admin_db.fetchval("SELECT count(*) FROM crm.workflow_executions WHERE organization_id = $1",
                                   uuid.UUID(other_tenant.org_id)) == 0


async def test_a_signed_engagement_letter_starts_its_workflow_once(stubs, wf, tenant, other_tenant, admin_db):
    w = await custom(wf, tenant, SIGNED_STEPS, triggers=SIGNED)
    theirs = await custom(wf, other_tenant, SIGNED_STEPS, triggers=SIGNED)  # the same workflow, elsewhere
    acme = await _client(stubs, tenant, "Acme Bakery LLC")
    doc = (await upload(stubs, tenant, PDF + uuid.uuid4().bytes, filename="engagement.pdf", client_id=acme.id,
                        document_type="engagement_letter")).document
    await stubs.documents.RequestSignatures(dpb.RequestSignaturesRequest(
        document_id=doc.id, signers=[dpb.SignerRef(user_id=tenant.user_id)]), metadata=tenant.md)
    signed = await stubs.documents.SignDocument(dpb.SignDocumentRequest(document_id=doc.id, intent="I agree"),
                                                metadata=tenant.md)
    assert signed.document.signature_status == document_pb2.SIGNATURE_STATUS_SIGNED
    [ex] = await eventually(lambda: _done(wf, tenant, w.id, 1), what="the filing workflow to complete")
    assert ex.trigger_event == "crm.document.signed" and ex.status == ST.WORKFLOW_EXECUTION_STATUS_COMPLETED
    title = "File the signed engagement.pdf of Acme Bakery LLC, version 1"
    assert [t.title for t in await list_todos(stubs, tenant) if t.title.startswith("File the signed")] == [title]
    await _redeliver(admin_db, tenant, "crm.document.signed", doc.id)
    # a marker behind the redeliveries: a second letter signed
    doc2 = (await upload(stubs, tenant, PDF + uuid.uuid4().bytes, filename="addendum.pdf", client_id=acme.id,
                         document_type="engagement_letter")).document
    await stubs.documents.RequestSignatures(dpb.RequestSignaturesRequest(
        document_id=doc2.id, signers=[dpb.SignerRef(user_id=tenant.user_id)]), metadata=tenant.md)
    await stubs.documents.SignDocument(dpb.SignDocumentRequest(document_id=doc2.id, intent="I agree"),
                                       metadata=tenant.md)
    assert len(await eventually(lambda: _done(wf, tenant, w.id, 2), what="the second filing")) == 2
    titles = [t.title for t in await list_todos(stubs, tenant) if t.title.startswith("File the signed")]
    assert sorted(titles) == sorted([title, "File the signed addendum.pdf of Acme Bakery LLC, version 1"])
    # the other tenant's identical workflow saw none of it
    assert await list_executions(wf, other_tenant, workflow_id=theirs.id) == []


async def test_events_and_fields_outside_the_catalog_are_refused(wf, tenant, admin_db):
    cases = [
        ([{"type": "event", "event": "crm.client.renamed"}], "workflow.definition.triggers[0].event"),
        ([{"type": "event", "event": "crm.client.created", "conditions": [{"field": "event.tax_id", "op": "exists"}]}],
         "workflow.definition.triggers[0].conditions[0].field"),
        ([{"type": "event", "event": "crm.document.signed", "conditions": [{"field": "donor.name", "op": "exists"}]}],
         "workflow.definition.triggers[0].conditions[0].field"),
        ([{"type": "event", "event": "crm.workflow.execution_completed"}], "workflow.definition.triggers[0].event"),
    ]
    for triggers, path in cases:
        w = ST.Workflow(name="bad")
        w.definition.update({"triggers": triggers, "steps": ONBOARD_STEPS})
        err = await invalid(wf.CreateWorkflow(pb.CreateWorkflowRequest(workflow=w), metadata=tenant.md), path)
        assert "crm." in err.details()  # it names what the catalog holds
    assert await admin_db.fetchval("SELECT count(*) FROM crm.workflows WHERE organization_id = $1",
                                   uuid.UUID(tenant.org_id)) == 0
