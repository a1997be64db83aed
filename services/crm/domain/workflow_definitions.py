"""A workflow's definition: its shape, its validation (every problem named by its path inside
the definition) and its step graph. No SQL, no grpc.

A definition is JSON:

    {"triggers": [{"type": "event", "event": "crm.donation.recorded",
                   "conditions": [{"field": "event.amount", "op": "gte", "value": 1000}]},
                  {"type": "schedule", "every": "7d", "audience": "lybunt"},
                  {"type": "manual"}],
     "steps": [{"id": "call", "type": "create_todo", "title": "Call {{donor.name}}", "due_in": "2d"},
               {"id": "wait", "type": "wait", "duration": "14d"},
               ...]}

Steps run in order; a step's `next` names the step that follows it instead ("end" ends the
execution); a step's `if` (conditions) skips it when false. A definition whose `next` links
make a cycle is refused. Conditions read the execution's context by dotted path: `event.*` (the
trigger event's payload), `donor.*`, `donation.*`, `client.*`, `document.*` (the facts its
payload names; domain.workflow_events says which, and what a trigger's conditions may test),
`vars.*` (the workflow's variables), `input.*` (a manual start's input), `steps.<id>.*` (what a
step produced), `execution.*`. Strings of a step may hold `{{path}}` placeholders, filled from
the same context (domain.workflow_context).
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

from chassis.errors import Violations
from services.crm.domain.workflow_events import TriggerCatalog, check_condition_fields, check_event

MAX_STEP_NAME = 200
MAX_DEFINITION_BYTES = 64 * 1024
MAX_STEPS = 50
MAX_TRIGGERS = 10
MAX_CONDITIONS = 20
MAX_TEXT = 5000
MAX_WAIT = timedelta(days=366)
MIN_SCHEDULE = timedelta(hours=1)

STEP_ID_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
TEMPLATE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
DURATION_RE = re.compile(r"^(\d{1,6})([smhd])$")
FIELD_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}

STEP_TYPES = ("create_todo", "send_message", "move_stage", "wait", "set_field", "webhook")
TRIGGER_TYPES = ("event", "schedule", "manual")
OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "exists")
AUDIENCES = ("lybunt",)
PRIORITIES = ("low", "medium", "high")
ROOTS = ("event", "donor", "donation", "client", "document", "vars", "input", "steps", "execution", "trigger")


def parse_duration(value: Any) -> timedelta | None:
    """'30s', '15m', '2h', '14d' -> a timedelta; None when it is not one."""
    if not isinstance(value, str):
        return None
    m = DURATION_RE.match(value.strip())
    if not m:
        return None
    n, unit = int(m.group(1)), m.group(2)
    return timedelta(**{_UNITS[unit]: n})



def json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), default=str).encode())



# -- the definition ------------------------------------------------------------------------------


def validate_definition(d: Any, path: str, v: Violations, catalog: TriggerCatalog) -> None:
    """Every problem of a definition, each named by its path inside it; the events its triggers
    and waits name (and their conditions' fields) are `catalog`'s."""
    if not isinstance(d, dict):
        v.add(path, "must be an object with triggers and steps")
        return
    if json_size(d) > MAX_DEFINITION_BYTES:
        v.add(path, f"must be at most {MAX_DEFINITION_BYTES} bytes as JSON")
        return
    for key in d:
        if key not in ("triggers", "steps"):
            v.add(f"{path}.{key}", "is not a definition field (triggers, steps)")
    triggers, steps = d.get("triggers", []), d.get("steps")
    if not isinstance(triggers, list):
        v.add(f"{path}.triggers", "must be a list")
        triggers = []
    elif len(triggers) > MAX_TRIGGERS:
        v.add(f"{path}.triggers", f"must hold at most {MAX_TRIGGERS} triggers")
    for i, t in enumerate(triggers[:MAX_TRIGGERS]):
        _check_trigger(t, f"{path}.triggers[{i}]", v, catalog)
    if not isinstance(steps, list) or not steps:
        v.add(f"{path}.steps", "must be a list of at least one step")
        return
    if len(steps) > MAX_STEPS:
        v.add(f"{path}.steps", f"must hold at most {MAX_STEPS} steps")
        return
    ids: dict[str, int] = {}
    for i, s in enumerate(steps):
        sid = s.get("id") if isinstance(s, dict) else None
        if isinstance(sid, str) and STEP_ID_RE.match(sid):
            if sid in ids:
                v.add(f"{path}.steps[{i}].id", f"repeats the id of steps[{ids[sid]}]")
            else:
                ids[sid] = i
    for i, s in enumerate(steps):
        _check_step(s, f"{path}.steps[{i}]", ids, v, catalog)
    _check_cycles(steps, ids, path, v)


def _check_trigger(t: Any, path: str, v: Violations, catalog: TriggerCatalog) -> None:
    if not isinstance(t, dict):
        v.add(path, "must be an object")
        return
    kind = t.get("type")
    if kind not in TRIGGER_TYPES:
        v.add(f"{path}.type", f"unknown trigger type {kind!r}; one of {', '.join(TRIGGER_TYPES)}")
        return
    allowed = {"type", "event", "conditions"} if kind == "event" else (
        {"type", "every", "audience"} if kind == "schedule" else {"type"})
    for key in t:
        if key not in allowed:
            v.add(f"{path}.{key}", f"is not a field of a {kind} trigger")
    if kind == "event":
        event = check_event(catalog, t.get("event"), f"{path}.event", v, "start on")
        check_conditions(t.get("conditions", []), f"{path}.conditions", v)
        if event is not None:
            check_condition_fields(t.get("conditions", []), event, t["event"], f"{path}.conditions", v,
                                   with_vars=True)
    elif kind == "schedule":
        every = parse_duration(t.get("every"))
        if every is None:
            v.add(f"{path}.every", "must be a duration such as '1d' or '12h'")
        elif every < MIN_SCHEDULE or every > MAX_WAIT:
            v.add(f"{path}.every", "must be between 1h and 366d")
        if "audience" in t and t["audience"] not in AUDIENCES:
            v.add(f"{path}.audience", f"unknown audience {t['audience']!r}; one of {', '.join(AUDIENCES)}")


def check_conditions(conditions: Any, path: str, v: Violations) -> None:
    if not isinstance(conditions, list):
        v.add(path, "must be a list of conditions")
        return
    if len(conditions) > MAX_CONDITIONS:
        v.add(path, f"must hold at most {MAX_CONDITIONS} conditions")
        return
    for i, c in enumerate(conditions):
        p = f"{path}[{i}]"
        if not isinstance(c, dict):
            v.add(p, "must be an object with field, op and value")
            continue
        for key in c:
            if key not in ("field", "op", "value"):
                v.add(f"{p}.{key}", "is not a condition field (field, op, value)")
        field = c.get("field")
        if not isinstance(field, str) or not FIELD_RE.match(field) or field.split(".")[0] not in ROOTS:
            v.add(f"{p}.field", f"must be a dotted path under one of {', '.join(ROOTS)}")
        op = c.get("op", "eq")
        if op not in OPERATORS:
            v.add(f"{p}.op", f"unknown operator {op!r}; one of {', '.join(OPERATORS)}")
        elif op in ("in", "not_in") and not isinstance(c.get("value"), list):
            v.add(f"{p}.value", f"must be a list for {op}")
        elif op != "exists" and "value" not in c:
            v.add(f"{p}.value", "is required")


def _text(s: dict, key: str, path: str, v: Violations, *, required: bool = False, limit: int = MAX_TEXT) -> None:
    value = s.get(key)
    if value is None:
        if required:
            v.add(f"{path}.{key}", "is required")
        return
    if not isinstance(value, str) or (required and not value.strip()):
        v.add(f"{path}.{key}", "must be a non-empty string" if required else "must be a string")
    elif len(value) > limit:
        v.add(f"{path}.{key}", f"must be at most {limit} characters")


_STEP_FIELDS = {
    "create_todo": {"title", "description", "due_in", "priority", "assignee"},
    "send_message": {"template", "to", "variables", "channel"},
    "move_stage": {"stage", "reason"},
    "wait": {"duration", "until_event", "match", "timeout"},
    "set_field": {"field", "value"},
    "webhook": {"url", "body"},
}
_COMMON = {"id", "type", "name", "if", "next"}


def _check_step(s: Any, path: str, ids: dict[str, int], v: Violations, catalog: TriggerCatalog) -> None:
    if not isinstance(s, dict):
        v.add(path, "must be an object")
        return
    sid = s.get("id")
    if not isinstance(sid, str) or not STEP_ID_RE.match(sid):
        v.add(f"{path}.id", "is required: lower-case letters, digits, _ and -, starting with a letter")
    kind = s.get("type")
    if kind not in STEP_TYPES:
        v.add(f"{path}.type", f"unknown step type {kind!r}; one of {', '.join(STEP_TYPES)}")
        return
    for key in s:
        if key not in _COMMON and key not in _STEP_FIELDS[kind]:
            v.add(f"{path}.{key}", f"is not a field of a {kind} step")
    _text(s, "name", path, v, limit=MAX_STEP_NAME)
    if "if" in s:
        check_conditions(s["if"], f"{path}.if", v)
    nxt = s.get("next")
    if nxt is not None and nxt != "end" and nxt not in ids:
        v.add(f"{path}.next", f"names no step of this workflow: {nxt!r}")
    if kind == "create_todo":
        _text(s, "title", path, v, required=True, limit=500)
        _text(s, "description", path, v)
        _text(s, "assignee", path, v, limit=200)
        if "due_in" in s and parse_duration(s["due_in"]) is None:
            v.add(f"{path}.due_in", "must be a duration such as '2d'")
        if "priority" in s and s["priority"] not in PRIORITIES:
            v.add(f"{path}.priority", f"must be one of {', '.join(PRIORITIES)}")
    elif kind == "send_message":
        template = s.get("template")
        if not isinstance(template, str) or not TEMPLATE_NAME_RE.match(template):
            v.add(f"{path}.template", "is required: a message template name (lower-case, digits, _ . -)")
        _text(s, "to", path, v, limit=320)
        if "variables" in s and not isinstance(s["variables"], dict):
            v.add(f"{path}.variables", "must be an object")
        if "channel" in s and s["channel"] not in ("email", "sms", "whatsapp"):
            v.add(f"{path}.channel", "must be email, sms or whatsapp")
    elif kind == "move_stage":
        _text(s, "stage", path, v, required=True, limit=64)
        _text(s, "reason", path, v, limit=1000)
    elif kind == "wait":
        duration, until = s.get("duration"), s.get("until_event")
        if (duration is None) == (until is None):
            v.add(path, "a wait step has either a duration or an until_event (with a timeout)")
        if duration is not None:
            d = parse_duration(duration)
            if d is None or d > MAX_WAIT:
                v.add(f"{path}.duration", "must be a duration such as '14d', at most 366d")
        if until is not None:
            event = check_event(catalog, until, f"{path}.until_event", v, "wait for")
            t = parse_duration(s.get("timeout"))
            if t is None or t > MAX_WAIT:
                v.add(f"{path}.timeout", "is required with until_event: a duration such as '14d', at most 366d")
            check_conditions(s.get("match", []), f"{path}.match", v)
            if event is not None:
                check_condition_fields(s.get("match", []), event, until, f"{path}.match", v, with_vars=False)
    elif kind == "set_field":
        field = s.get("field")
        if not isinstance(field, str) or not (
                re.match(r"^vars\.[A-Za-z_][A-Za-z0-9_]{0,62}$", field)
                or re.match(r"^donor\.custom_fields\.[A-Za-z_][A-Za-z0-9_]{0,62}$", field)):
            v.add(f"{path}.field", "must be vars.<name> or donor.custom_fields.<name>")
        if "value" not in s:
            v.add(f"{path}.value", "is required")
    elif kind == "webhook":
        url = s.get("url")
        if not isinstance(url, str) or not re.match(r"^https?://[^\s/]+", url) or len(url) > 2000:
            v.add(f"{path}.url", "must be an http(s) URL of at most 2000 characters")
        if "body" in s and not isinstance(s["body"], dict):
            v.add(f"{path}.body", "must be an object")


def successor(steps: list[dict], index: int) -> int | None:
    """The index of the step after steps[index], None at the end."""
    nxt = steps[index].get("next")
    if nxt == "end":
        return None
    if nxt is not None:
        for i, s in enumerate(steps):
            if s.get("id") == nxt:
                return i
        return None
    return index + 1 if index + 1 < len(steps) else None


def _check_cycles(steps: list, ids: dict[str, int], path: str, v: Violations) -> None:
    if not all(isinstance(s, dict) for s in steps):
        return
    done: set[int] = set()
    for start in range(len(steps)):
        seen: list[int] = []
        i: int | None = start
        while i is not None and i not in done:
            if i in seen:
                v.add(f"{path}.steps[{seen[-1]}].next",
                      f"makes a cycle: {' -> '.join(str(steps[k].get('id')) for k in seen[seen.index(i):])}"
                      f" -> {steps[i].get('id')}")
                done.update(seen)
                break
            seen.append(i)
            i = successor(steps, i)
        done.update(seen)


def trigger_events(d: dict) -> list[str]:
    return sorted({t["event"] for t in d.get("triggers", []) if isinstance(t, dict) and t.get("type") == "event"})


def schedule_of(d: dict) -> dict | None:
    for t in d.get("triggers", []):
        if isinstance(t, dict) and t.get("type") == "schedule":
            return t
    return None


def has_manual(d: dict) -> bool:
    return any(isinstance(t, dict) and t.get("type") == "manual" for t in d.get("triggers", []))


def message_templates(d: dict) -> dict[str, list[int]]:
    """The message templates a valid definition's send_message steps name: name -> step indexes."""
    out: dict[str, list[int]] = {}
    for i, s in enumerate(d.get("steps", [])):
        if isinstance(s, dict) and s.get("type") == "send_message" and isinstance(s.get("template"), str):
            out.setdefault(s["template"], []).append(i)
    return out
