"""Workflow rules: the fields of a workflow, the status moves, the retry back-off and an
execution's progress. No SQL, no grpc. The definition's shape and validation are
domain.workflow_definitions; conditions and templating on a running context, domain.workflow_context.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from chassis.errors import FailedPrecondition, Violations
from services.crm.domain.workflow_definitions import json_size, validate_definition
from services.crm.domain.workflow_events import TriggerCatalog

STATUSES = ("draft", "active", "paused", "archived")
EXECUTION_STATUSES = ("running", "waiting", "completed", "failed", "cancelled")
UPDATABLE = ("name", "description", "category", "definition", "variables")
VERSIONED = ("definition", "variables")  # a change of these makes a new version

MAX_NAME = 200
MAX_DESCRIPTION = 5000
MAX_CATEGORY = 100
MAX_VARIABLES_BYTES = 16 * 1024
MAX_INPUT_BYTES = 16 * 1024
MAX_LOG = 200  # log entries kept per execution (the newest)
MAX_ATTEMPTS = 5  # tries of a step before the execution fails
BACKOFF_BASE_SECONDS = 10.0
BACKOFF_MAX_SECONDS = 3600.0

_MOVES = {
    "activate": ({"draft", "paused"}, "active"),
    "pause": ({"active"}, "paused"),
    "archive": ({"draft", "active", "paused"}, "archived"),
}


def move(verb: str, status: str, workflow_id: str, *, is_template: bool) -> str:
    allowed, to = _MOVES[verb]
    if verb == "activate" and is_template:
        raise FailedPrecondition(f"workflow {workflow_id} is a template: copy it (CreateWorkflow with template_id)",
                                 reason="WORKFLOW_IS_TEMPLATE")
    if status not in allowed:
        raise FailedPrecondition(f"a {status} workflow cannot be {verb}d", reason="INVALID_STATUS_TRANSITION",
                                 metadata={"from_status": status, "to_status": to})
    return to


def check_editable(status: str, workflow_id: str) -> None:
    if status == "archived":
        raise FailedPrecondition(f"workflow {workflow_id} is archived", reason="WORKFLOW_ARCHIVED")


def backoff(attempts: int) -> timedelta:
    """The wait before try number attempts+1: 10 s, 20 s, 40 s... at most an hour."""
    return timedelta(seconds=min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1)))


# -- fields of a workflow ------------------------------------------------------------------------


@dataclass
class WorkflowFields:
    name: str = ""
    description: str = ""
    category: str = ""
    definition: dict | None = None
    variables: dict | None = None
    is_template: bool = False
    template_id: str = ""


def check_fields(f: WorkflowFields, prefix: str, v: Violations, catalog: TriggerCatalog,
                 attrs: tuple[str, ...] | list[str] = UPDATABLE) -> None:
    if "name" in attrs:
        f.name = f.name.strip()
        if not f.name:
            v.add(f"{prefix}.name", "is required")
        elif len(f.name) > MAX_NAME:
            v.add(f"{prefix}.name", f"must be at most {MAX_NAME} characters")
    if "description" in attrs and len(f.description) > MAX_DESCRIPTION:
        v.add(f"{prefix}.description", f"must be at most {MAX_DESCRIPTION} characters")
    if "category" in attrs and len(f.category.strip()) > MAX_CATEGORY:
        v.add(f"{prefix}.category", f"must be at most {MAX_CATEGORY} characters")
    if "variables" in attrs and f.variables is not None and json_size(f.variables) > MAX_VARIABLES_BYTES:
        v.add(f"{prefix}.variables", f"must be at most {MAX_VARIABLES_BYTES} bytes as JSON")
    if "definition" in attrs:
        if f.definition is None:
            v.add(f"{prefix}.definition", "is required")
        else:
            validate_definition(f.definition, f"{prefix}.definition", v, catalog)


def progress(done_index: int | None, total: int) -> int:
    """Percent of steps behind the execution (None: finished)."""
    if done_index is None or total <= 0:
        return 100
    return min(99, int(100 * done_index / total))
