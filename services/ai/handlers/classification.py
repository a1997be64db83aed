"""ClassifyDonor: the donor's class from their giving history (with the reason) into crm's
donors.ai_classification, and the todo a fundraiser should do next into crm's todos as an AI
suggestion (reasoning and confidence), never duplicating one still open. Everything goes
through crm's API with the caller's own token: their rights in crm apply unchanged."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from chassis.db import Database, UnitOfWork
from chassis.resource import parse_id
from services.ai.domain.classify import classify
from services.ai.handlers.deps import Deps


@dataclass
class Classified:
    label: str
    reason: str
    todo_id: str = ""
    todo_title: str = ""
    suggestion: str = ""  # "created", "already_open" or "none"


async def classify_donor(db: Database, deps: Deps, org: uuid.UUID, metadata, donor_id: str,
                         suggest_todo: bool) -> Classified:
    donor = str(parse_id(donor_id, "donor_id"))
    out = await apply(deps, metadata, donor, suggest_todo)
    async with db.unit_of_work(org) as uow:
        audit(uow, donor, out)
    return out


async def apply(deps: Deps, metadata, donor: str, suggest_todo: bool) -> Classified:
    """Classifies one donor into crm with `metadata`'s rights and, when asked, suggests their next
    todo unless the same one is still open: run twice, it changes nothing the second time."""
    facts = await deps.crm.donor_facts(metadata, donor, gifts=200)
    result = classify(facts, datetime.now(UTC).date())
    await deps.crm.set_classification(metadata, donor, result.label)
    out = Classified(result.label, result.reason, suggestion="none")
    if suggest_todo and result.todo is not None:
        open_ones = await deps.crm.open_ai_todos(metadata, donor)
        same = next((t for t in open_ones if t["title"] == result.todo.title), None)
        if same is not None:
            out.todo_id, out.todo_title, out.suggestion = same["id"], same["title"], "already_open"
        else:
            # Two classifications at once suggest one todo: the request id is the suggestion's.
            month = datetime.now(UTC).strftime("%Y-%m")  # a suggestion done and closed may come back next month
            key = hashlib.sha256(f"{donor}:{result.todo.title}:{month}".encode()).hexdigest()[:32]
            out.todo_id = await deps.crm.suggest_todo(metadata, donor, result.todo.title, result.todo.reasoning,
                                                      result.todo.confidence, f"ai-suggest:{key}")
            out.todo_title, out.suggestion = result.todo.title, "created"
    return out


def audit(uow: UnitOfWork, donor: str, out: Classified) -> None:
    uow.audit("ai.donor.classified", "donor", donor, after={"ai_classification": out.label, "reason": out.reason,
                                                           "todo": out.todo_id})
