"""Project (campaign) rules: what a valid project holds, and how its status may move."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from datetime import date
from decimal import Decimal
from typing import Any

from chassis.errors import FailedPrecondition, Violations
from services.crm.domain.donations import CURRENCY_RE, MAX_AMOUNT

DRAFT = "draft"
ACTIVE = "active"
COMPLETED = "completed"
CANCELLED = "cancelled"
STATUSES = (DRAFT, ACTIVE, COMPLETED, CANCELLED)
CREATABLE = (DRAFT, ACTIVE)
TRANSITIONS = frozenset({(DRAFT, ACTIVE), (DRAFT, CANCELLED), (ACTIVE, COMPLETED), (ACTIVE, CANCELLED)})
DEFAULT_CURRENCY = "USD"
MAX_NAME = 200
MAX_DESCRIPTION = 20_000
MAX_SETTINGS_BYTES = 64 * 1024

# UpdateProject field-mask paths -> ProjectFields attributes (currency is fixed at creation).
PATH_TO_ATTR = {
    "name": "name", "description": "description", "target_amount": "target_amount", "start_date": "start_date",
    "end_date": "end_date", "status": "status", "settings": "settings",
}


@dataclass
class ProjectFields:
    """A project's writable fields as plain values. `problems` holds what could not even be
    read (an impossible date, malformed money), by attribute, as (field path, description)."""

    name: str = ""
    description: str | None = None
    currency: str = ""
    target_amount: Decimal | None = None
    target_currency: str = ""
    start_date: date | None = None
    end_date: date | None = None
    status: str | None = None  # None: unspecified
    settings: dict[str, Any] = field(default_factory=dict)
    problems: dict[str, tuple[str, str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("problems", "target_currency")}


def normalize(f: ProjectFields, prefix: str, v: Violations, *, attrs: list[str] | None = None) -> ProjectFields:
    """Validate every field (their problems: of `attrs` only, when given); on create (currency
    empty) the currency comes from currency_code, else the target's, else USD."""
    p = f"{prefix}."
    for attr, (path, description) in f.problems.items():
        if attrs is None or attr in attrs:
            v.add(path, description)
    out = ProjectFields()
    out.name = " ".join((f.name or "").split())
    if not out.name:
        v.add(f"{p}name", "is required")
    elif len(out.name) > MAX_NAME:
        v.add(f"{p}name", f"must be at most {MAX_NAME} characters")
    out.description = (f.description or "").strip() or None
    if out.description and len(out.description) > MAX_DESCRIPTION:
        v.add(f"{p}description", f"must be at most {MAX_DESCRIPTION} characters")
    out.currency = (f.currency or f.target_currency or DEFAULT_CURRENCY).strip()
    if not CURRENCY_RE.match(out.currency):
        v.add(f"{p}currency_code", "must be a three-letter ISO 4217 code such as USD")
    out.target_amount = f.target_amount
    if f.target_amount is not None:
        if f.target_amount < 0:
            v.add(f"{p}target_amount", "must not be negative")
        elif f.target_amount > MAX_AMOUNT:
            v.add(f"{p}target_amount", f"must be at most {MAX_AMOUNT}")
        elif f.target_amount != f.target_amount.quantize(Decimal("0.01")):
            v.add(f"{p}target_amount", "must have at most two decimal places")
        if f.target_currency != out.currency:
            v.add(f"{p}target_amount.currency_code", f"must be the project's currency ({out.currency})")
    out.start_date, out.end_date = f.start_date, f.end_date
    if f.start_date and f.end_date and f.end_date < f.start_date:
        v.add(f"{p}end_date", "must not be before start_date")
    out.status = f.status
    if f.status is None:
        v.add(f"{p}status", "is required")
    elif f.status not in STATUSES:
        v.add(f"{p}status", f"must be one of {', '.join(STATUSES)}")
    out.settings = dict(f.settings or {})
    if len(json.dumps(out.settings)) > MAX_SETTINGS_BYTES:
        v.add(f"{p}settings", f"must be at most {MAX_SETTINGS_BYTES} bytes as JSON")
    return out


def check_creatable_status(status: str | None, path: str, v: Violations) -> str:
    status = status or DRAFT
    if status not in CREATABLE:
        v.add(path, "a project is created DRAFT or ACTIVE")
    return status


def check_status_change(old: str, new: str, project_id: str) -> None:
    if old != new and (old, new) not in TRANSITIONS:
        raise FailedPrecondition(
            f"project {project_id} cannot move from {old} to {new} "
            "(allowed: draft->active, draft->cancelled, active->completed, active->cancelled)",
            reason="INVALID_STATUS_TRANSITION", metadata={"from": old, "to": new})


def check_accepts_gifts(status: str, project_id: str) -> None:
    """Gifts go to draft (pledges before launch), active and completed projects (late gifts to
    a finished campaign still count); a cancelled project takes none."""
    if status == CANCELLED:
        raise FailedPrecondition(f"project {project_id} is cancelled and takes no donations",
                                 reason="PROJECT_CANCELLED", metadata={"project_id": project_id})
