"""Running workflows: start an execution, evaluate triggers on events, run one due action.

Durability: an execution's next step is one row of crm.workflow_due (a job); the worker claims
due rows with a lease and runs each in its tenant's unit of work, which writes the step's own
effects (a todo, a stage move, a field), the execution's progress and the next due row in ONE
transaction: a crash before the commit leaves nothing done and the lease runs out, so the step
runs again; after it, the step is recorded done and never runs again. Effects outside crm
(a comms message, a webhook) carry a key derived from the execution and the step (comms'
request_id, the webhook's Idempotency-Key), so running them again does them once. A wait is the
same row due later. A failing step is tried again with back-off, then the execution fails with
its error; RetryWorkflowExecution runs that step again.

Time comes from a Clock, injected: the system clock in service, a manual one in tests.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Protocol

from givance.events.v1 import crm_events_pb2

from chassis.db import Database, UnitOfWork
from chassis.errors import DeadlineExceeded, ServiceError, Unavailable
from services.crm.domain import workflow_context as context_rules
from services.crm.domain import workflow_definitions as definitions
from services.crm.domain import workflow_events as event_rules
from services.crm.domain import workflows as rules
from services.crm.handlers.workflow_steps import Effects, StepFailed, as_uuid, iso, run_step
from services.crm.store import clients, documents
from services.crm.store import workflows as store
from services.crm.store.workflows import Due, Execution, Workflow

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)  # a claimed row not finished by then is claimed again


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told (tests): starts at the system's time."""

    def __init__(self, start: datetime | None = None):
        self._now = start or datetime.now(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, **delta: float) -> datetime:
        self._now += timedelta(**delta)
        return self._now


SYSTEM_CLOCK = SystemClock()


def _log(e: Execution, now: datetime, step_id: str | None, outcome: str, message: str = "",
         output: dict | None = None) -> None:
    entry = {"time": iso(now), "step_id": step_id or "", "outcome": outcome, "message": message}
    if output:
        entry["output"] = output
    e.log = [*e.log, entry][-rules.MAX_LOG:]


# -- starting --------------------------------------------------------------------------------


async def arm_schedule(uow: UnitOfWork, wid: uuid.UUID, definition: dict, clock: Clock) -> None:
    """An active workflow with a schedule trigger has its next run due (now, on activation)."""
    if definitions.schedule_of(definition) is not None:
        await store.schedule_workflow(uow.conn, uow.tenant_id, wid, clock.now())
    else:
        await store.unschedule_workflow(uow.conn, wid)


async def _facts(uow: UnitOfWork, payload: dict) -> dict:
    """What a trigger's conditions read besides the payload: the donor, the gift, the client and
    the document it names (domain.workflow_events.FACTS: what each holds)."""
    out: dict = {}
    org = uow.tenant_id
    donor_id, donation_id = as_uuid(payload.get("donor_id")), as_uuid(payload.get("donation_id"))
    document_id, client_id = as_uuid(payload.get("document_id")), as_uuid(payload.get("client_id"))
    if donor_id is not None and (donor := await store.donor_facts(uow.conn, org, donor_id)) is not None:
        out["donor"] = donor
    if donation_id is not None and (donation := await store.donation_facts(uow.conn, org, donation_id)) is not None:
        out["donation"] = donation
    if document_id is not None and (doc := await documents.get_document(uow.conn, org, document_id)) is not None:
        out["document"] = _fact("document", doc)
        client_id = client_id or doc["client_id"]
    if client_id is not None and (client := await clients.get_client(uow.conn, org, client_id)) is not None:
        out["client"] = _fact("client", {**client, "assigned_manager_id": client["assigned_manager"]})
    return out


def _fact(root: str, row: dict) -> dict:
    """A stored row as the fact a condition or a {{placeholder}} reads: its catalogued fields, as JSON."""
    out: dict = {}
    for name in event_rules.FACTS[root][1]:
        value = row.get(name)
        out[name] = (str(value) if isinstance(value, uuid.UUID) else list(value) if isinstance(value, list | tuple)
                     else "" if value is None else value)
    return out


async def start(uow: UnitOfWork, wf: Workflow, trigger_event: str, key: str, trigger: dict,
                donor_id: uuid.UUID | None, now: datetime, *, input_: dict | None = None,
                facts: dict | None = None) -> uuid.UUID | None:
    """A new execution of wf's current version, its first step due now; None when the workflow
    already started for this key (or the donor is gone)."""
    facts = dict(facts or {})
    if donor_id is not None and "donor" not in facts:
        donor = await store.donor_facts(uow.conn, uow.tenant_id, donor_id)
        if donor is None:
            return None
        facts["donor"] = donor
    eid = uuid.uuid4()
    steps = wf.definition["steps"]
    context = {"event": trigger.get("payload", {}), "trigger": {k: v for k, v in trigger.items() if k != "payload"},
               "vars": dict(wf.variables), "input": input_ or {}, "steps": {},
               "execution": {"id": str(eid), "start_time": iso(now)}, **facts}
    e = Execution(id=eid, organization_id=uow.tenant_id, workflow_id=wf.id, workflow_version=wf.definition_version,
                  trigger_event=trigger_event, trigger_key=key, trigger_data=trigger, context=context,
                  status="running", progress=0, step_index=0, current_step=steps[0]["id"], donor_id=donor_id, log=[],
                  error=None, attempts=0, wait_event=None, wait_match=None, next_run_at=now, started_at=now,
                  ended_at=None, updated_at=now)
    _log(e, now, None, "started", f"started by {trigger_event}")
    if not await store.insert_execution(uow.conn, uow.tenant_id, e):
        return None
    await store.schedule_step(uow.conn, uow.tenant_id, eid, wf.id, now)
    uow.publish("crm.workflow.execution_started", crm_events_pb2.WorkflowExecutionStartedEvent(
        execution_id=str(eid), workflow_id=str(wf.id), workflow_version=wf.definition_version,
        trigger_event=trigger_event, donor_id=str(donor_id or "")),
        aggregate_type="workflow_execution", aggregate_id=str(eid))
    return eid


async def on_event(uow: UnitOfWork, event_type: str, event_id: str, payload: dict, now: datetime) -> int:
    """An event of uow's tenant: start every active workflow it triggers (conditions met), and
    resume every execution waiting for it. Only rows are written: the steps run on the worker."""
    workflows = await store.active_for_event(uow.conn, uow.tenant_id, event_type)
    waiting = await store.waiting_for(uow.conn, uow.tenant_id, event_type)
    if not workflows and not waiting:
        return 0  # most events of most organizations: two indexed reads, nothing more
    payload = context_rules.flatten_money(payload)
    facts = await _facts(uow, payload)
    started = 0
    for wf in workflows:
        for trigger in wf.definition.get("triggers", []):
            if trigger.get("type") != "event" or trigger.get("event") != event_type:
                continue
            ctx = {"event": payload, "vars": wf.variables, **facts}
            if not context_rules.matches(trigger.get("conditions", []), ctx):
                continue
            donor_id = as_uuid(payload.get("donor_id")) if "donor" in facts else None
            data = {"event": event_type, "event_id": event_id, "payload": payload}
            if await start(uow, wf, event_type, f"event:{event_id}", data, donor_id, now, facts=facts):
                started += 1
            break  # one execution per workflow and event
    for e in waiting:
        if context_rules.matches(e.wait_match or [], {"event": payload, **facts}, values_from=e.context):
            await _resume(uow, e, {"event_arrived": True, "event_id": event_id, "event": payload}, now)
    return started


async def _resume(uow: UnitOfWork, e: Execution, output: dict, now: datetime) -> None:
    """A waiting execution's wait ends (its event came, or its time): on to the next step."""
    steps = (await _definition(uow, e))["steps"]
    await _advance(uow, e, steps, {**output, "time": iso(now)}, "completed", now, due_id=None)


# -- the worker's unit of work -----------------------------------------------------------------


async def claim(db: Database, clock: Clock, limit: int, paused: list[uuid.UUID] | None = None) -> list[Due]:
    """Due rows of every tenant but the `paused` ones (suspended: their work waits, due)."""
    now = clock.now()
    async with db.unit_of_work(None) as uow:
        return await store.claim(uow.conn, now, now + LEASE, limit, paused)


async def run_due(db: Database, due: Due, effects: Effects, clock: Clock) -> None:
    """One claimed due row: a workflow's scheduled run, or an execution's step."""
    async with db.unit_of_work(due.tenant_id) as uow:
        if await store.take(uow.conn, due) is None:
            return  # its lease ran out and another worker has it
        now = clock.now()
        if due.kind == "schedule":
            await _run_schedule(uow, due, now)
            return
        e = await _locked_execution(uow, due.execution_id)
        if e is None:
            await store.release(uow.conn, due.id, due.due_at)  # a request holds it: next round
            return
        if e.status not in ("running", "waiting"):
            await store.unschedule_step(uow.conn, e.id)
            return
        steps = (await _definition(uow, e))["steps"]
        if e.status == "waiting":  # the wait's time came without its event
            await _advance(uow, e, steps, {"event_arrived": False, "time": iso(now)}, "completed", now,
                           due_id=due.id)
            return
        step = steps[e.step_index]
        wf = (await store.get_workflow(uow.conn, uow.tenant_id, e.workflow_id, with_deleted=True)
              if step["type"] in ("webhook", "move_stage") else None)
        try:
            async with uow.conn.begin_nested():  # a failing step's own writes are undone, not the record of it
                outcome, output, wait = await run_step(uow, wf, e, step, effects, now)
        except (StepFailed, ServiceError) as exc:
            # a business refusal will not change by trying again; an outage (UNAVAILABLE, a deadline) may
            retryable = (exc.retryable if isinstance(exc, StepFailed)
                         else isinstance(exc, Unavailable | DeadlineExceeded))
            await _failed(uow, e, step, str(exc), retryable, now, due.id)
            return
        except Exception as exc:  # noqa: BLE001 (a provider's error, a timeout: tried again)
            log.warning("workflow %s execution %s step %s failed: %s", e.workflow_id, e.id, step["id"],
                        type(exc).__name__)
            await _failed(uow, e, step, f"{type(exc).__name__}: {exc}"[:1000], True, now, due.id)
            return
        if wait is not None:
            until, event, match = wait
            e.status, e.wait_event, e.wait_match, e.next_run_at, e.attempts = "waiting", event, match, until, 0
            _log(e, now, step["id"], "waiting",
                 f"until {iso(until)}" + (f" or {event}" if event else ""))
            await store.save_execution(uow.conn, uow.tenant_id, e)
            await store.release(uow.conn, due.id, until)
            return
        await _advance(uow, e, steps, output, outcome, now, due_id=due.id)


async def _locked_execution(uow: UnitOfWork, eid: uuid.UUID) -> Execution | None:
    """The execution locked, or None when a request or the trigger consumer holds it (the worker
    never waits on a lock while it holds its due row: no deadlock with them)."""
    return await store.get_execution(uow.conn, uow.tenant_id, eid, for_update=True, skip_locked=True)


_VERSIONS: dict[tuple[uuid.UUID, int], dict] = {}  # a version never changes: kept once read
_VERSIONS_MAX = 2000


async def _definition(uow: UnitOfWork, e: Execution) -> dict:
    key = (e.workflow_id, e.workflow_version)
    found = _VERSIONS.get(key)
    if found is None:
        found, _ = await store.get_version(uow.conn, uow.tenant_id, e.workflow_id, e.workflow_version)
        if len(_VERSIONS) >= _VERSIONS_MAX:
            _VERSIONS.clear()
        _VERSIONS[key] = found
    return found


async def _advance(uow: UnitOfWork, e: Execution, steps: list[dict], output: dict, outcome: str, now: datetime,
                   *, due_id: int | None) -> None:
    step = steps[e.step_index]
    e.context.setdefault("steps", {})[step["id"]] = output
    _log(e, now, step["id"], outcome, "", output)
    nxt = definitions.successor(steps, e.step_index)
    e.attempts, e.error, e.wait_event, e.wait_match = 0, None, None, None
    if nxt is None:
        e.status, e.progress, e.step_index, e.current_step, e.next_run_at, e.ended_at = (
            "completed", 100, None, None, None, now)
        _log(e, now, None, "completed")
        await store.unschedule_step(uow.conn, e.id)
    else:
        e.status, e.step_index, e.current_step, e.next_run_at = "running", nxt, steps[nxt]["id"], now
        e.progress = rules.progress(len(e.context["steps"]), len(steps))
        if due_id is not None:
            await store.release(uow.conn, due_id, now)
        else:
            await store.schedule_step(uow.conn, uow.tenant_id, e.id, e.workflow_id, now)
    await store.save_execution(uow.conn, uow.tenant_id, e)
    uow.publish("crm.workflow.step_completed", crm_events_pb2.WorkflowStepCompletedEvent(
        execution_id=str(e.id), workflow_id=str(e.workflow_id), step_id=step["id"], step_type=step["type"],
        outcome=outcome, progress=e.progress), aggregate_type="workflow_execution", aggregate_id=str(e.id))
    if e.status == "completed":
        uow.publish("crm.workflow.execution_completed", crm_events_pb2.WorkflowExecutionCompletedEvent(
            execution_id=str(e.id), workflow_id=str(e.workflow_id), donor_id=str(e.donor_id or "")),
            aggregate_type="workflow_execution", aggregate_id=str(e.id))


async def _failed(uow: UnitOfWork, e: Execution, step: dict, error: str, retryable: bool, now: datetime,
                  due_id: int) -> None:
    e.attempts += 1
    e.error = error
    if retryable and e.attempts < rules.MAX_ATTEMPTS:
        e.next_run_at = now + rules.backoff(e.attempts)
        _log(e, now, step["id"], "retrying", f"try {e.attempts} failed: {error}; next at {iso(e.next_run_at)}")
        await store.save_execution(uow.conn, uow.tenant_id, e)
        await store.release(uow.conn, due_id, e.next_run_at)
        return
    e.status, e.next_run_at = "failed", None
    _log(e, now, step["id"], "failed", error)
    await store.save_execution(uow.conn, uow.tenant_id, e)
    await store.unschedule_step(uow.conn, e.id)
    uow.publish("crm.workflow.execution_failed", crm_events_pb2.WorkflowExecutionFailedEvent(
        execution_id=str(e.id), workflow_id=str(e.workflow_id), step_id=step["id"], error=error,
        attempts=e.attempts), aggregate_type="workflow_execution", aggregate_id=str(e.id))


async def retry(uow: UnitOfWork, e: Execution, now: datetime) -> None:
    """A failed execution runs its failed step again, its tries counted afresh."""
    e.status, e.attempts, e.error, e.next_run_at = "running", 0, None, now
    _log(e, now, e.current_step, "retried", "retried by a user")
    await store.save_execution(uow.conn, uow.tenant_id, e)
    await store.schedule_step(uow.conn, uow.tenant_id, e.id, e.workflow_id, now)


async def cancel(uow: UnitOfWork, e: Execution, now: datetime) -> None:
    e.status, e.next_run_at, e.ended_at, e.wait_event, e.wait_match = "cancelled", None, now, None, None
    _log(e, now, e.current_step, "cancelled", "cancelled by a user")
    await store.save_execution(uow.conn, uow.tenant_id, e)
    await store.unschedule_step(uow.conn, e.id)


async def _run_schedule(uow: UnitOfWork, due: Due, now: datetime) -> None:
    wf = await store.get_workflow(uow.conn, uow.tenant_id, due.workflow_id)
    trigger = definitions.schedule_of(wf.definition) if wf is not None and wf.status == "active" else None
    if trigger is None:
        await store.unschedule_workflow(uow.conn, due.workflow_id)
        return
    every = definitions.parse_duration(trigger["every"])
    if trigger.get("audience") == "lybunt":
        for donor_id in await store.lybunt_donor_ids(uow.conn, uow.tenant_id, now.date()):
            data = {"event": "schedule", "audience": "lybunt", "time": iso(now)}
            await start(uow, wf, "schedule", f"lybunt:{donor_id}:{now.year}", data, donor_id, now)
    else:
        await start(uow, wf, "schedule", f"schedule:{iso(due.due_at)}", {"event": "schedule", "time": iso(now)},
                    None, now)
    nxt = due.due_at + every
    while nxt <= now:
        nxt += every
    await store.release(uow.conn, due.id, nxt)


