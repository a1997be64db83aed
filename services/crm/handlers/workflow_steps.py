"""The steps of a workflow: what each step type does when an execution reaches it.

A step's own writes (a todo, a stage move, a field) happen in the worker's unit of work (they
commit with the step's record, or not at all). Effects outside crm (a comms message, a webhook)
carry a key derived from the execution and the step (comms' request_id, the webhook's
Idempotency-Key): the same on every try, so the receiver does its work once.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chassis.crypto import Keyring
from chassis.db import UnitOfWork
from chassis.errors import Violations
from services.crm.domain import workflow_context as context_rules
from services.crm.domain import workflow_definitions as definitions
from services.crm.handlers import journeys as journey_handlers
from services.crm.providers.messenger import Message, MessageRefused, Messenger, RecordingMessenger
from services.crm.providers.webhooks import Webhooks, signature
from services.crm.store import members as members_store
from services.crm.store import todos as todo_store
from services.crm.store import workflows as store
from services.crm.store.workflows import Execution, Workflow


@dataclass
class Effects:
    """What steps reach outside crm's database through."""

    keys: Keyring
    messenger: Messenger = field(default_factory=RecordingMessenger)
    webhooks: Webhooks | None = None


class StepFailed(Exception):
    def __init__(self, message: str, *, retryable: bool = True):
        super().__init__(message)
        self.retryable = retryable


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat()


def as_uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def _effect_key(e: Execution, step: dict) -> str:
    """The receiving service's request id for this step of this execution: the same on every try."""
    return f"wf-{e.id}-{step['id']}"


async def run_step(uow: UnitOfWork, wf: Workflow | None, e: Execution, step: dict, effects: Effects, now: datetime
                   ) -> tuple[str, dict, tuple[datetime, str | None, list | None] | None]:
    """(outcome, output, wait): wait is (until, event type, match) for a wait step."""
    ctx = e.context
    if "if" in step and not context_rules.matches(step["if"], ctx):
        return "skipped", {"time": iso(now), "skipped": True}, None
    kind = step["type"]
    out: dict[str, Any] = {"time": iso(now)}
    org = uow.tenant_id
    if kind == "create_todo":
        out.update(await _create_todo(uow, e, step, now))
    elif kind == "send_message":
        to = str(context_rules.render(step.get("to", "donor"), ctx) or "donor")
        donor_id = str(e.donor_id or "") if to == "donor" else ""
        if to == "donor" and not donor_id:
            raise StepFailed("send_message to the donor, but the execution has no donor", retryable=False)
        rendered = context_rules.render(step.get("variables", {}), ctx)
        variables = {k: "" if v is None else str(v) for k, v in rendered.items()}
        try:
            sent = await effects.messenger.send(Message(
                tenant_id=org, request_id=_effect_key(e, step), template=step["template"], variables=variables,
                channel=step.get("channel", "email"), donor_id=donor_id, address="" if to == "donor" else to))
        except MessageRefused as exc:
            raise StepFailed(str(exc), retryable=exc.retryable) from None
        out.update({"message_id": sent.message_id, "template": step["template"], "to": donor_id or to,
                    "variables": variables, "delivered": sent.delivered, "messenger": sent.provider, **sent.extra})
    elif kind == "move_stage":
        if e.donor_id is None:
            raise StepFailed("move_stage needs a donor, and the execution has none", retryable=False)
        stage = str(context_rules.render(step["stage"], ctx)).strip()
        donor = await store.donor_facts(uow.conn, org, e.donor_id)
        if donor is not None and donor["journey_stage"] == stage:
            out.update({"to_stage": stage, "unchanged": True})
        else:
            moved = await journey_handlers.move_in(
                uow, org, e.donor_id, str(e.donor_id), stage, str(context_rules.render(step.get("reason", ""), ctx))
                or f"workflow {wf.name}", "", f"workflow:{wf.id}", Violations())
            out.update({"from_stage": moved.change.from_stage or "", "to_stage": stage})
    elif kind == "wait":
        if "duration" in step:
            return "waiting", out, (now + definitions.parse_duration(step["duration"]), None, None)
        return "waiting", out, (now + definitions.parse_duration(step["timeout"]), step["until_event"],
                                step.get("match", []))
    elif kind == "set_field":
        value = context_rules.render(step["value"], ctx)
        root, _, name = step["field"].partition(".")
        if root == "vars":
            ctx.setdefault("vars", {})[name] = value
        else:
            key = name.removeprefix("custom_fields.")
            if e.donor_id is None or not await store.set_donor_custom_field(uow.conn, org, e.donor_id, key, value):
                raise StepFailed("set_field on the donor, but the execution has no live donor", retryable=False)
            uow.audit("crm.donor.update", "donor", str(e.donor_id), after={f"custom_fields.{key}": value},
                      actor_id=f"workflow:{e.workflow_id}", actor_kind="workflow")
        out.update({"field": step["field"], "value": value})
    elif kind == "webhook":
        if effects.webhooks is None:
            raise StepFailed("webhooks are not configured on this crm", retryable=False)
        body = json.dumps({"workflow_id": str(wf.id), "execution_id": str(e.id), "step_id": step["id"],
                           "data": context_rules.render(step.get("body", {}), ctx)}, separators=(",", ":"),
                          default=str).encode()
        secret = effects.keys.open(wf.webhook_secret_sealed, f"crm.workflows.webhook_secret:{wf.id}".encode())
        stamp = str(int(now.timestamp()))
        r = await effects.webhooks.post(step["url"], body, {
            "X-Givance-Signature": signature(secret, stamp, body), "X-Givance-Timestamp": stamp,
            "Idempotency-Key": _effect_key(e, step)})
        if not 200 <= r.status < 300:
            raise StepFailed(f"the webhook answered HTTP {r.status}", retryable=r.status >= 500 or r.status == 429)
        out.update({"url": step["url"], "status": r.status})
    return "completed", out, None


async def _create_todo(uow: UnitOfWork, e: Execution, step: dict, now: datetime) -> dict:
    ctx, org = e.context, uow.tenant_id
    title = str(context_rules.render(step["title"], ctx)).strip()[:500] or "Workflow todo"
    description = str(context_rules.render(step.get("description", ""), ctx))[:20000] or None
    note = ""
    assignee = as_uuid(context_rules.render(step.get("assignee", ""), ctx))
    if assignee is not None and not await members_store.is_active(uow.conn, org, assignee):
        note, assignee = f"{assignee} is not an active member: left unassigned", None
    due = (now + definitions.parse_duration(step["due_in"])).date() if "due_in" in step else None
    donor_ok = e.donor_id is not None and await todo_store.donor_is_live(uow.conn, org, e.donor_id)
    values = {"title": title, "description": description, "due_date": due, "priority": step.get("priority", "medium"),
              "donor_id": e.donor_id if donor_ok else None, "project_id": None, "assigned_to": assignee,
              "is_ai_generated": False, "ai_reasoning": None, "ai_confidence": None}
    request_id = _effect_key(e, step)
    todo_id = uuid.uuid4()
    if not await todo_store.insert(uow.conn, org, todo_id, values, None, request_id):
        todo_id = await todo_store.id_by_request_id(uow.conn, org, request_id)
    else:
        uow.audit("crm.todo.create", "todo", str(todo_id), after={k: values[k] for k in ("title", "due_date",
                                                                                         "assigned_to", "donor_id")},
                  actor_id=f"workflow:{e.workflow_id}", actor_kind="workflow")
    out = {"todo_id": str(todo_id), "title": title, "assignee_id": str(assignee or ""),
           "due_date": due.isoformat() if due else ""}
    if note:
        out["note"] = note
    return out
