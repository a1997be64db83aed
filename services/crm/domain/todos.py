"""Todo rules: what a valid todo holds, and how its status may move."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, fields
from datetime import date
from decimal import Decimal, InvalidOperation

from chassis.errors import FailedPrecondition, Violations

PENDING = "pending"
IN_PROGRESS = "in_progress"
COMPLETED = "completed"
CANCELLED = "cancelled"
STATUSES = (PENDING, IN_PROGRESS, COMPLETED, CANCELLED)

LOW, MEDIUM, HIGH = "low", "medium", "high"
PRIORITIES = (LOW, MEDIUM, HIGH)

# The moves each custom method makes: method verb -> (from statuses, to status).
MOVES = {
    "start": ((PENDING,), IN_PROGRESS),
    "complete": ((PENDING, IN_PROGRESS), COMPLETED),
    "cancel": ((PENDING, IN_PROGRESS), CANCELLED),
}

MAX_TITLE = 500
MAX_TEXT = 20_000

# Who may be assigned a todo: an active member of the organization (crm.members, a replica kept
# from identity's events), or the caller themself (their membership may not have arrived yet).
# A todo keeps its assignee when the assignee later leaves; only a new assignment is checked.
NOT_AN_ACTIVE_MEMBER = "is not an active member of the organization"
# UpdateTodo field-mask paths -> TodoFields attributes.
PATH_TO_ATTR = {
    "title": "title", "description": "description", "due_date": "due_date", "priority": "priority",
    "assignee_id": "assigned_to", "donor_id": "donor_id", "project_id": "project_id",
}
ATTR_TO_PATH = {v: k for k, v in PATH_TO_ATTR.items()}


@dataclass
class TodoFields:
    """A todo's writable fields as plain values (ids as text until checked). `problems` holds
    what could not even be read (an impossible date, an unknown enum), by attribute, as
    (field path, description)."""

    title: str = ""
    description: str | None = None
    due_date: date | None = None
    priority: str | None = None  # None: unspecified (medium)
    donor_id: str = ""
    project_id: str = ""
    assigned_to: str = ""
    is_ai_generated: bool = False
    ai_reasoning: str | None = None
    ai_confidence: str = ""  # decimal text, "" when unset
    problems: dict[str, tuple[str, str]] = field(default_factory=dict)


@dataclass
class CleanTodo:
    title: str
    description: str | None
    due_date: date | None
    priority: str
    donor_id: str | None
    project_id: str | None
    assigned_to: str | None
    is_ai_generated: bool = False
    ai_reasoning: str | None = None
    ai_confidence: Decimal | None = None

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _uuid_text(value: str, path: str, v: Violations) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        v.add(path, "is not a valid id")
        return None


def normalize(f: TodoFields, prefix: str, v: Violations, *, attrs: list[str] | None = None,
              creating: bool = False) -> CleanTodo:
    """Validate the fields (their problems: of `attrs` only, when given); AI fields on create only."""
    p = f"{prefix}."
    for attr, (path, description) in f.problems.items():
        if attrs is None or attr in attrs:
            v.add(path, description)
    title = " ".join((f.title or "").split())
    if not title:
        v.add(f"{p}title", "is required")
    elif len(title) > MAX_TITLE:
        v.add(f"{p}title", f"must be at most {MAX_TITLE} characters")
    description = (f.description or "").strip() or None
    if description and len(description) > MAX_TEXT:
        v.add(f"{p}description", f"must be at most {MAX_TEXT} characters")
    priority = f.priority or MEDIUM
    if priority not in PRIORITIES:
        v.add(f"{p}priority", f"must be one of {', '.join(PRIORITIES)}")
    out = CleanTodo(
        title=title, description=description, due_date=f.due_date, priority=priority,
        donor_id=_uuid_text(f.donor_id, f"{p}donor_id", v),
        project_id=_uuid_text(f.project_id, f"{p}project_id", v),
        assigned_to=_uuid_text(f.assigned_to, f"{p}assignee_id", v),
    )
    if creating:
        out.is_ai_generated = f.is_ai_generated
        out.ai_reasoning = (f.ai_reasoning or "").strip() or None
        if out.ai_reasoning and len(out.ai_reasoning) > MAX_TEXT:
            v.add(f"{p}ai_reasoning", f"must be at most {MAX_TEXT} characters")
        if out.ai_reasoning and not f.is_ai_generated:
            v.add(f"{p}ai_reasoning", "is only for AI-generated todos (is_ai_generated)")
        out.ai_confidence = check_confidence(f.ai_confidence, f.is_ai_generated, f"{p}ai_confidence", v)
    return out


def check_confidence(value: str, is_ai_generated: bool, path: str, v: Violations) -> Decimal | None:
    value = (value or "").strip()
    if not value:
        return None
    if not is_ai_generated:
        v.add(path, "is only for AI-generated todos (is_ai_generated)")
        return None
    try:
        d = Decimal(value)
    except InvalidOperation:
        v.add(path, "is not a decimal number")
        return None
    if not d.is_finite() or d < 0 or d > 1:
        v.add(path, "must be between 0.00 and 1.00")
        return None
    if d != d.quantize(Decimal("0.01")):
        v.add(path, "must have at most two decimal places")
        return None
    return d.quantize(Decimal("0.01"))


def assignee_to_check(new: str | None, current: str | None, caller: str | None) -> uuid.UUID | None:
    """The assignee whose active membership must be checked, or None: no assignee, the one the
    todo already has (kept even if they left since), or the caller themself."""
    if not new:
        return None
    assignee = uuid.UUID(new)
    for same in (current, caller):
        try:
            if same and uuid.UUID(same) == assignee:
                return None
        except ValueError:
            continue
    return assignee


def check_creatable_status(status: str | None, path: str, v: Violations) -> None:
    if status not in (None, PENDING):
        v.add(path, "a todo is created PENDING; use StartTodo, CompleteTodo or CancelTodo to move it")


def move(verb: str, current: str, todo_id: str) -> str:
    """The status `verb` moves a todo in `current` to, or FAILED_PRECONDITION."""
    allowed_from, to = MOVES[verb]
    if current not in allowed_from:
        raise FailedPrecondition(
            f"todo {todo_id} cannot move from {current} to {to} (allowed from: {', '.join(allowed_from)})",
            reason="INVALID_STATUS_TRANSITION", metadata={"from": current, "to": to})
    return to
