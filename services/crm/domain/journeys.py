"""The donor journey: a graph of stages and the transitions between them (seed 000)."""

from __future__ import annotations

import re

from chassis.errors import FailedPrecondition, Violations

DEFAULT_JOURNEY: dict = {
    "stages": [
        {"id": "prospect", "name": "Prospect", "description": "Potential donor identified",
         "transitions": [{"to": "first_contact", "condition": "Initial outreach made"}]},
        {"id": "first_contact", "name": "First contact", "description": "Initial outreach made",
         "transitions": [{"to": "cultivation", "condition": "Donor responded or engaged"},
                         {"to": "first_gift", "condition": "Donor gave"}]},
        {"id": "cultivation", "name": "Cultivation", "description": "Building the relationship",
         "transitions": [{"to": "solicitation", "condition": "Ready for an ask"},
                         {"to": "first_gift", "condition": "Donor gave"}]},
        {"id": "solicitation", "name": "Solicitation", "description": "A gift has been asked for",
         "transitions": [{"to": "first_gift", "condition": "Donor gave"},
                         {"to": "cultivation", "condition": "Not yet; keep cultivating"}]},
        {"id": "first_gift", "name": "First gift", "description": "Made a first donation",
         "transitions": [{"to": "stewardship", "condition": "Thanked and receipted"}]},
        {"id": "stewardship", "name": "Stewardship", "description": "Thanking, reporting impact",
         "transitions": [{"to": "repeat_donor", "condition": "Gave again"},
                         {"to": "lapsed", "condition": "No gift in over a year"}]},
        {"id": "repeat_donor", "name": "Repeat donor", "description": "Gives regularly",
         "transitions": [{"to": "major_donor", "condition": "Major gift capacity shown"},
                         {"to": "lapsed", "condition": "No gift in over a year"}]},
        {"id": "major_donor", "name": "Major donor", "description": "Gives at the major-gift level",
         "transitions": [{"to": "stewardship", "condition": "Continued stewardship"},
                         {"to": "lapsed", "condition": "No gift in over a year"}]},
        {"id": "lapsed", "name": "Lapsed", "description": "No gift in over a year",
         "transitions": [{"to": "cultivation", "condition": "Re-engaged"},
                         {"to": "repeat_donor", "condition": "Gave again"}]},
    ]
}


def stage_ids(graph: dict | None) -> set[str]:
    return {s["id"] for s in (graph or DEFAULT_JOURNEY)["stages"]}


# -- editing the journey and moving donors along it ------------------------------------------

STAGE_ID_RE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
MAX_STAGES = 100
MAX_TRANSITIONS = 50
MAX_NAME = 200
MAX_DESCRIPTION = 2000
MAX_CONDITION = 1000
MAX_REASON = 1000
# The version of the default journey of an organization without a stored one: the version a
# seeded row starts at, so the etag does not change when the seeding arrives.
DEFAULT_VERSION = 1
WRITABLE = ("stages",)


def normalize_graph(stages: list[dict], prefix: str, v: Violations) -> dict:
    """A valid journey graph from stages given as dicts (id, name, description, transitions of
    {to, condition}); violations are named `<prefix>.stages[i]...`."""
    p = f"{prefix}.stages"
    if not stages:
        v.add(p, "must hold at least one stage")
    elif len(stages) > MAX_STAGES:
        v.add(p, f"must hold at most {MAX_STAGES} stages")
    out: list[dict] = []
    first_index: dict[str, int] = {}
    for i, s in enumerate(stages):
        sid = (s.get("id") or "").strip()
        if not STAGE_ID_RE.match(sid):
            v.add(f"{p}[{i}].id", "must be a slug: a lowercase letter, then lowercase letters, digits, '_' or '-'; "
                                  "at most 64 characters")
        elif sid in first_index:
            v.add(f"{p}[{i}].id", f"duplicates stages[{first_index[sid]}].id {sid!r}")
        else:
            first_index[sid] = i
        name = " ".join((s.get("name") or "").split())
        if not name:
            v.add(f"{p}[{i}].name", "is required")
        elif len(name) > MAX_NAME:
            v.add(f"{p}[{i}].name", f"must be at most {MAX_NAME} characters")
        description = (s.get("description") or "").strip()
        if len(description) > MAX_DESCRIPTION:
            v.add(f"{p}[{i}].description", f"must be at most {MAX_DESCRIPTION} characters")
        out.append({"id": sid, "name": name, "description": description, "transitions": s.get("transitions") or []})
    ids = set(first_index)
    for i, s in enumerate(out):
        transitions = s["transitions"]
        if len(transitions) > MAX_TRANSITIONS:
            v.add(f"{p}[{i}].transitions", f"must hold at most {MAX_TRANSITIONS} transitions")
        clean: list[dict] = []
        targets: set[str] = set()
        for k, t in enumerate(transitions):
            path = f"{p}[{i}].transitions[{k}]"
            to = (t.get("to") or "").strip()
            if to not in ids:
                v.add(f"{path}.to", f"is not a stage of the journey: {to!r}")
            elif to == s["id"]:
                v.add(f"{path}.to", "must lead to another stage")
            elif to in targets:
                v.add(f"{path}.to", f"duplicates another transition to {to!r}")
            targets.add(to)
            condition = (t.get("condition") or "").strip()
            if len(condition) > MAX_CONDITION:
                v.add(f"{path}.condition", f"must be at most {MAX_CONDITION} characters")
            clean.append({"to": to, "condition": condition})
        s["transitions"] = clean
    return {"stages": out}


def removed_stages(old: dict | None, new: dict) -> set[str]:
    return stage_ids(old) - stage_ids(new)


def check_stages_in_use(in_use: dict[str, int]) -> None:
    """Stages live donors are in (id -> how many) may not be removed."""
    if in_use:
        names = ", ".join(f"{s} ({n} donor{'s' if n != 1 else ''})" for s, n in sorted(in_use.items()))
        raise FailedPrecondition(f"donors are in stages the update removes: {names}; move them first",
                                 reason="STAGE_IN_USE", metadata={"stages": ",".join(sorted(in_use))})


def check_move(graph: dict | None, current: str | None, to_stage: str) -> None:
    """A donor moves along a transition of its current stage. A donor with no stage, or whose
    stage is no longer in the journey, may be placed in any stage (donors come into the
    system at every point of their relationship: imports, gifts recorded before any outreach)."""
    stages = {s["id"]: s for s in (graph or DEFAULT_JOURNEY)["stages"]}
    if not current or current not in stages:
        return
    allowed = [t["to"] for t in stages[current].get("transitions") or []]
    if to_stage not in allowed:
        raise FailedPrecondition(
            f"no transition leads from {current!r} to {to_stage!r} (from {current!r}: "
            f"{', '.join(allowed) or 'none'})",
            reason="INVALID_STAGE_TRANSITION", metadata={"from_stage": current, "to_stage": to_stage})


def check_move_request(to_stage: str, reason: str, graph: dict | None, v: Violations) -> str:
    to_stage = to_stage.strip()
    if not to_stage:
        v.add("to_stage", "is required")
    elif to_stage not in stage_ids(graph):
        v.add("to_stage", f"is not a stage of the organization's journey: {to_stage!r}")
    reason = reason.strip()
    if not reason:
        v.add("reason", "is required")
    elif len(reason) > MAX_REASON:
        v.add("reason", f"must be at most {MAX_REASON} characters")
    return reason
