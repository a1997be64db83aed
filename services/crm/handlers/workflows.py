"""Workflow use cases: create (or copy a template), get, list, update, activate/pause/archive,
delete; and an execution's reads, manual start, retry and cancel."""

from __future__ import annotations

import copy
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from givance.events.v1 import crm_events_pb2

from chassis import context
from chassis.crypto import Keyring
from chassis.db import Database, UnitOfWork
from chassis.errors import FailedPrecondition, InvalidArgument, NotFound, Violations
from chassis.resource import Keyset, check_request_id, current, found, parse_id, parse_optional_id, update_request
from services.crm.domain import workflow_definitions as definitions
from services.crm.domain import workflow_templates as templates
from services.crm.domain import workflows as rules
from services.crm.domain.workflows import WorkflowFields
from services.crm.handlers import workflow_runs as runs
from services.crm.handlers.workflow_events import CATALOG
from services.crm.handlers.workflow_runs import Clock
from services.crm.providers.message_templates import TemplateCatalog, UncheckedTemplates
from services.crm.store import workflows as store
from services.crm.store.workflows import Execution, Workflow

UNCHECKED = UncheckedTemplates()
_AUDITED = ("name", "description", "category", "definition", "variables", "status", "definition_version",
            "is_template", "template_id")


def _audited(w: Workflow) -> dict:
    return {k: getattr(w, k) for k in _AUDITED}


def _caller_id() -> uuid.UUID | None:
    ctx = context.current_or_none()
    principal = ctx.principal if ctx else None
    try:
        return uuid.UUID(principal.subject) if principal else None
    except ValueError:
        return None


def _aad(wid: uuid.UUID) -> bytes:
    return f"crm.workflows.webhook_secret:{wid}".encode()


@dataclass
class Created:
    workflow: Workflow
    webhook_secret: str  # only on the first answer (not on a retried request)


async def create_workflow(db: Database, keys: Keyring, org: uuid.UUID, f: WorkflowFields, request_id: str,
                          catalog: TemplateCatalog = UNCHECKED) -> Created:
    v = Violations()
    check_request_id(request_id, v)
    template_id = f.template_id.strip()
    if template_id and not template_id.startswith(templates.PREFIX):
        parse_id(template_id, "workflow.template_id", v)
    if template_id.startswith(templates.PREFIX) and template_id not in templates.BY_NAME:
        v.add("workflow.template_id", f"no such template: {template_id!r}")
    v.raise_if_any()
    if request_id or template_id:
        async with db.unit_of_work(org) as uow:  # a retried request's first answer; the template to copy
            if request_id:
                earlier = await store.workflow_id_by_request_id(uow.conn, org, request_id)
                if earlier is not None:
                    return Created(await store.get_workflow(uow.conn, org, earlier, with_deleted=True), "")
            if template_id:
                await _copy_template(uow, org, template_id, f)
    rules.check_fields(f, "workflow", v, CATALOG)
    v.raise_if_any()
    await check_message_templates(catalog, f.definition, "workflow.definition")
    async with db.unit_of_work(org) as uow:
        f.category = f.category.strip()
        wid = uuid.uuid4()
        secret = secrets.token_urlsafe(32)
        values = {"name": f.name, "description": f.description, "category": f.category, "definition": f.definition,
                  "variables": f.variables or {}, "is_template": f.is_template, "template_id": template_id}
        if not await store.insert_workflow(uow.conn, org, wid, values, definitions.trigger_events(f.definition),
                                           keys.seal(secret.encode(), _aad(wid)), _caller_id(), request_id or None):
            wid = await store.workflow_id_by_request_id(uow.conn, org, request_id)
            return Created(await store.get_workflow(uow.conn, org, wid, with_deleted=True), "")
        row = await store.get_workflow(uow.conn, org, wid)
        uow.publish("crm.workflow.created", crm_events_pb2.WorkflowCreatedEvent(
            workflow_id=str(wid), name=row.name, version=row.definition_version, status=row.status,
            template_id=template_id, is_template=row.is_template), aggregate_type="workflow", aggregate_id=str(wid))
        uow.audit("crm.workflow.create", "workflow", str(wid), after=_audited(row))
        return Created(row, secret)


async def _copy_template(uow: UnitOfWork, org: uuid.UUID, template_id: str, f: WorkflowFields) -> None:
    """A shipped template or one of the organization's template workflows fills what the request
    left empty; the request's variables are merged over the template's."""
    if template_id.startswith(templates.PREFIX):
        t = templates.BY_NAME[template_id]
        definition, variables, name, description, category = (t.definition, t.variables, t.title, t.description,
                                                               t.category)
    else:
        source = await store.get_workflow(uow.conn, org, uuid.UUID(template_id))
        if source is None or not source.is_template:
            raise InvalidArgument.field("workflow.template_id", f"no such template workflow: {template_id}")
        definition, variables, name, description, category = (source.definition, source.variables, source.name,
                                                               source.description or "", source.category or "")
    if f.definition is None:
        f.definition = copy.deepcopy(definition)
    f.variables = {**variables, **(f.variables or {})}
    f.name = f.name or name
    f.description = f.description or description
    f.category = f.category or category


async def check_message_templates(catalog: TemplateCatalog, definition: dict, path: str) -> None:
    """A valid definition's send_message steps name templates the organization has (asked of
    comms with the caller's credentials, outside any transaction); else INVALID_ARGUMENT naming
    each such step's `template`."""
    names = definitions.message_templates(definition)
    if not names:
        return
    ctx = context.current_or_none()
    metadata = (("authorization", f"Bearer {ctx.token}"), ("x-tenant-id", str(ctx.tenant_id)),
                ("x-request-id", ctx.request_id)) if ctx else ()
    missing = await catalog.missing(names, metadata)
    v = Violations()
    for name in sorted(missing):
        for i in names[name]:
            v.add(f"{path}.steps[{i}].template", f"names no message template of the organization: {name!r}")
    v.raise_if_any()


def list_templates() -> tuple[templates.Template, ...]:
    return templates.TEMPLATES


async def get_workflow(db: Database, org: uuid.UUID, workflow_id: str) -> Workflow:
    wid = parse_id(workflow_id, "id")
    async with db.unit_of_work(org) as uow:
        row = await store.get_workflow(uow.conn, org, wid)
    return found(row, "workflow", workflow_id)


async def list_workflows(db: Database, org: uuid.UUID, *, status: str | None, category: str, templates_only: bool,
                         page_size: int, page_token: str) -> tuple[list[Workflow], str]:
    page = Keyset.of(page_size, page_token, ("workflows", status or "", category, templates_only),
                     (datetime.fromisoformat, uuid.UUID))
    async with db.unit_of_work(org) as uow:
        rows = await store.page_workflows(uow.conn, org, status=status, category=category.strip(),
                                          templates_only=templates_only, after=page.after, limit=page.limit)
    return page.cut(rows, lambda r: (r.created_at, r.id))


async def update_workflow(db: Database, org: uuid.UUID, workflow_id: str, etag: str, patch: WorkflowFields,
                          mask: list[str], catalog: TemplateCatalog = UNCHECKED) -> Workflow:
    wid, attrs = update_request(workflow_id, "workflow.id", mask, rules.UPDATABLE)
    v = Violations()
    if "definition" in attrs and patch.definition is not None:
        definitions.validate_definition(patch.definition, "workflow.definition", v, CATALOG)
        if not v:  # (an invalid one is reported with every other problem below)
            await check_message_templates(catalog, patch.definition, "workflow.definition")
        v = Violations()
    async with db.unit_of_work(org) as uow:
        row = current(await store.get_workflow(uow.conn, org, wid, for_update=True), "workflow", workflow_id, etag,
                      "workflow.etag")
        rules.check_editable(row.status, workflow_id)
        merged = WorkflowFields(name=row.name, description=row.description or "", category=row.category or "",
                                definition=row.definition, variables=row.variables)
        for a in attrs:
            setattr(merged, a, getattr(patch, a))
        if merged.variables is None:
            merged.variables = {}
        rules.check_fields(merged, "workflow", v, CATALOG, attrs)
        v.raise_if_any()
        merged.category = merged.category.strip()
        changed = [a for a in attrs if getattr(merged, a) != (getattr(row, a) if a in ("definition", "variables")
                                                               else getattr(row, a) or "")]
        versioned = any(a in rules.VERSIONED for a in changed)
        new_version = row.definition_version + (1 if versioned else 0)
        values = {"name": merged.name, "description": merged.description, "category": merged.category,
                  "definition": merged.definition, "variables": merged.variables}
        await store.update_workflow(uow.conn, org, wid, values, definitions.trigger_events(merged.definition),
                                    new_version)
        if versioned:
            await store.insert_version(uow.conn, org, wid, new_version, merged.definition, merged.variables)
            if row.status == "active":
                await runs.arm_schedule(uow, wid, merged.definition, runs.SYSTEM_CLOCK)
        updated = await store.get_workflow(uow.conn, org, wid)
        if changed:
            uow.publish("crm.workflow.updated", crm_events_pb2.WorkflowUpdatedEvent(
                workflow_id=str(wid), version=new_version, changed_fields=changed),
                aggregate_type="workflow", aggregate_id=str(wid))
        uow.audit_change("crm.workflow.update", "workflow", str(wid), _audited(row), _audited(updated))
        return updated


async def move_workflow(db: Database, org: uuid.UUID, verb: str, workflow_id: str, etag: str,
                        clock: Clock = runs.SYSTEM_CLOCK) -> Workflow:
    """ActivateWorkflow, PauseWorkflow, ArchiveWorkflow."""
    wid = parse_id(workflow_id, "id")
    async with db.unit_of_work(org) as uow:
        row = current(await store.get_workflow(uow.conn, org, wid, for_update=True), "workflow", workflow_id, etag,
                      "etag")
        to = rules.move(verb, row.status, workflow_id, is_template=row.is_template)
        await store.set_workflow_status(uow.conn, org, wid, to)
        if to == "active":
            await runs.arm_schedule(uow, wid, row.definition, clock)
            uow.publish("crm.workflow.activated", crm_events_pb2.WorkflowActivatedEvent(
                workflow_id=str(wid), version=row.definition_version), aggregate_type="workflow", aggregate_id=str(wid))
        else:
            await store.unschedule_workflow(uow.conn, wid)
            if row.status == "active":
                uow.publish("crm.workflow.paused", crm_events_pb2.WorkflowPausedEvent(
                    workflow_id=str(wid), version=row.definition_version, archived=to == "archived"),
                    aggregate_type="workflow", aggregate_id=str(wid))
        updated = await store.get_workflow(uow.conn, org, wid)
        uow.audit(f"crm.workflow.{verb}", "workflow", str(wid), before={"status": row.status}, after={"status": to})
        return updated


async def delete_workflow(db: Database, org: uuid.UUID, workflow_id: str, etag: str) -> None:
    wid = parse_id(workflow_id, "id")
    async with db.unit_of_work(org) as uow:
        row = current(await store.get_workflow(uow.conn, org, wid, for_update=True), "workflow", workflow_id, etag,
                      "etag")
        await store.soft_delete_workflow(uow.conn, org, wid)
        await store.unschedule_workflow(uow.conn, wid)
        uow.audit("crm.workflow.delete", "workflow", str(wid), before=_audited(row))


# -- executions ----------------------------------------------------------------------------------


async def get_execution(db: Database, org: uuid.UUID, execution_id: str) -> Execution:
    eid = parse_id(execution_id, "id")
    async with db.unit_of_work(org) as uow:
        row = await store.get_execution(uow.conn, org, eid)
    return found(row, "workflow execution", execution_id)


async def list_executions(db: Database, org: uuid.UUID, *, workflow_id: str, donor_id: str, status: str | None,
                          page_size: int, page_token: str) -> tuple[list[Execution], str]:
    v = Violations()
    wid = parse_optional_id(workflow_id, "workflow_id", v)
    did = parse_optional_id(donor_id, "donor_id", v)
    v.raise_if_any()
    page = Keyset.of(page_size, page_token, ("workflow_executions", str(wid or ""), str(did or ""), status or ""),
                     (datetime.fromisoformat, uuid.UUID))
    async with db.unit_of_work(org) as uow:
        rows = await store.page_executions(uow.conn, org, workflow_id=wid, donor_id=did, status=status,
                                           after=page.after, limit=page.limit)
    return page.cut(rows, lambda r: (r.created_at, r.id))


async def start_execution(db: Database, org: uuid.UUID, workflow_id: str, donor_id: str, payload: dict | None,
                          request_id: str, clock: Clock = runs.SYSTEM_CLOCK) -> Execution:
    v = Violations()
    wid = parse_id(workflow_id, "workflow_id", v)
    did = parse_optional_id(donor_id, "donor_id", v)
    check_request_id(request_id, v)
    if payload is not None and definitions.json_size(payload) > rules.MAX_INPUT_BYTES:
        v.add("input", f"must be at most {rules.MAX_INPUT_BYTES} bytes as JSON")
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        wf = found(await store.get_workflow(uow.conn, org, wid), "workflow", workflow_id)
        if wf.status != "active":
            raise FailedPrecondition(f"workflow {workflow_id} is {wf.status}, not active",
                                     reason="WORKFLOW_NOT_ACTIVE")
        if not definitions.has_manual(wf.definition):
            raise FailedPrecondition(f"workflow {workflow_id} has no manual trigger", reason="NO_MANUAL_TRIGGER")
        key = f"manual:{request_id}" if request_id else f"manual:{uuid.uuid4()}"
        earlier = await store.execution_id_by_key(uow.conn, org, wid, key) if request_id else None
        if earlier is not None:
            return await store.get_execution(uow.conn, org, earlier)
        trigger = {"event": "manual", "input": payload or {}}
        eid = await runs.start(uow, wf, "manual", key, trigger, did, clock.now(), input_=payload or {})
        if eid is None:
            if did is not None:
                raise NotFound(f"donor {donor_id} not found")
            raise FailedPrecondition("the execution could not start", reason="NOT_STARTED")
        row = await store.get_execution(uow.conn, org, eid)
        uow.audit("crm.workflow.execution.start", "workflow_execution", str(eid),
                  after={"workflow_id": str(wid), "donor_id": str(did or "")})
        return row


async def retry_execution(db: Database, org: uuid.UUID, execution_id: str, clock: Clock = runs.SYSTEM_CLOCK
                          ) -> Execution:
    eid = parse_id(execution_id, "id")
    async with db.unit_of_work(org) as uow:
        e = found(await store.get_execution(uow.conn, org, eid, for_update=True), "workflow execution", execution_id)
        if e.status != "failed":
            raise FailedPrecondition(f"a {e.status} execution cannot be retried", reason="INVALID_STATUS_TRANSITION")
        await runs.retry(uow, e, clock.now())
        uow.audit("crm.workflow.execution.retry", "workflow_execution", str(eid), before={"status": "failed"},
                  after={"status": "running", "current_step": e.current_step})
        return await store.get_execution(uow.conn, org, eid)


async def cancel_execution(db: Database, org: uuid.UUID, execution_id: str, clock: Clock = runs.SYSTEM_CLOCK
                           ) -> Execution:
    eid = parse_id(execution_id, "id")
    async with db.unit_of_work(org) as uow:
        e = found(await store.get_execution(uow.conn, org, eid, for_update=True), "workflow execution", execution_id)
        if e.status not in ("running", "waiting", "failed"):
            raise FailedPrecondition(f"a {e.status} execution cannot be cancelled", reason="INVALID_STATUS_TRANSITION")
        before = e.status
        await runs.cancel(uow, e, clock.now())
        uow.audit("crm.workflow.execution.cancel", "workflow_execution", str(eid), before={"status": before},
                  after={"status": "cancelled"})
        return await store.get_execution(uow.conn, org, eid)
