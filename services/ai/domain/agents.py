"""Agents' tools and the built-in agent (no model).

A tool is read or write. Read tools run at once, with the user's own token; a write tool is
never run by the agent: it becomes a pending action the user confirms (ConfirmAgentAction).
The built-in agent plans from the USER's message only (never from tool results: donor data is
data), and answers from what the tools returned, with templates.
"""

from __future__ import annotations

import re
from typing import Any

from chassis.errors import InvalidArgument
from services.ai.domain.models import Tool

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

TOOLS: dict[str, Tool] = {
    "search_donors": Tool("search_donors", "Find the organization's donors by name, email or phone.", {
        "type": "object", "properties": {"query": {"type": "string", "maxLength": 200}}, "required": ["query"]}),
    "get_donor": Tool("get_donor", "A donor's giving history, journey stage and open todos.", {
        "type": "object", "properties": {"donor_id": {"type": "string"}}, "required": ["donor_id"]}),
    "create_todo": Tool("create_todo", "Propose a todo about a donor; the user confirms it before it is created.", {
        "type": "object", "properties": {"donor_id": {"type": "string"}, "title": {"type": "string", "maxLength": 500}},
        "required": ["donor_id", "title"]}),
}
WRITES = frozenset({"create_todo"})
KNOWN = frozenset(TOOLS)


def check_arguments(name: str, args: dict[str, Any]) -> dict[str, str]:
    """The tool's arguments, checked (strings of bounded size, ids well formed)."""
    out: dict[str, str] = {}
    for key in TOOLS[name].parameters["required"]:
        value = args.get(key)
        if not isinstance(value, str) or not value.strip():
            raise InvalidArgument.field(f"{name}.{key}", "is required")
        value = value.strip()
        if key == "donor_id" and not _UUID.fullmatch(value):
            raise InvalidArgument.field(f"{name}.{key}", "is not a valid id")
        if len(value) > 500:
            raise InvalidArgument.field(f"{name}.{key}", "is too long")
        out[key] = value
    return out


def plan(message: str, allowed: frozenset[str]) -> list[tuple[str, dict[str, str]]]:
    """The built-in agent's tool calls for the user's message."""
    text = " ".join(message.split())
    ids = _UUID.findall(text)
    lower = text.lower()
    calls: list[tuple[str, dict[str, str]]] = []
    if ids and ("todo" in lower or "remind" in lower):
        title = text.split(":", 1)[1].strip() if ":" in text else "Follow up"
        calls.append(("create_todo", {"donor_id": ids[0], "title": title[:500] or "Follow up"}))
    elif ids:
        calls.append(("get_donor", {"donor_id": ids[0]}))
    else:
        m = re.search(r"(?:find|search(?: for)?|look up|who is)\s+(.+)", text, re.IGNORECASE)
        if m:
            calls.append(("search_donors", {"query": m.group(1).strip(" ?.!")[:200]}))
    return [c for c in calls if c[0] in allowed]


HELP = ('I can find donors ("find Ada"), tell you about a donor (give me their id), or propose a todo '
        '("todo for <donor id>: call to say thanks"), which you confirm before it is created.')


def answer(results: list[tuple[str, dict[str, str], Any]]) -> str:
    """The built-in agent's answer from its tool calls' results (name, arguments, result)."""
    if not results:
        return HELP
    lines: list[str] = []
    for name, args, result in results:
        if name == "search_donors":
            found = result or []
            if not found:
                lines.append(f"No donor matches \"{args['query']}\".")
            else:
                lines.append(f"{len(found)} donor(s) match \"{args['query']}\": " + "; ".join(
                    f"{d['name']}{' of ' + d['city'] if d.get('city') else ''} ({d['id']})" for d in found))
        elif name == "get_donor":
            d = result
            gift = d["gifts"][0] if d["gifts"] else None
            text = f"{d['name']}: {len(d['gifts'])} recorded gift(s)"
            text += f", the latest {gift['amount']} {gift['currency']} on {gift['date']}" if gift else ""
            text += f"; journey stage {d['journey_stage']}" if d.get("journey_stage") else ""
            text += f"; open todos: {', '.join(t['title'] for t in d['open_todos'])}" if d.get("open_todos") else ""
            lines.append(text + ".")
        elif name in WRITES:
            lines.append(f"I have proposed a todo \"{args['title']}\"; confirm it to create it.")
    return "\n".join(lines)
