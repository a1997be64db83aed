"""The WhatsApp assistant's rules: staff numbers, and how the built-in assistant reads a question.

The assistant only ever has read tools (search_donors, get_donor): there is no write tool to
call, whatever the question says. The built-in assistant plans from the staff member's question
alone: it takes the name asked about, searches for it, and when exactly one donor matches,
reads that donor's gifts. Its answer is built from templates (domain/agents.answer)."""

from __future__ import annotations

import re

import phonenumbers

from chassis.errors import Violations

READ_TOOLS = frozenset({"search_donors", "get_donor"})
QUESTION_MAX = 4096
ANSWER_MAX = 4096  # WhatsApp's limit on a text message's body

_UUID = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
# "find Ada", "who is Ada Lovelace?", "how much did Ada give", "gifts of/from Ada", "about Ada"
_ASKS = [
    re.compile(r"(?:find|search(?: for)?|look up|who is|tell me about|about)\s+(.+)", re.IGNORECASE),
    re.compile(r"how much (?:did|has)\s+(.+?)\s+(?:give|given|donate|donated)\b", re.IGNORECASE),
    re.compile(r"(?:gifts?|donations?|giving)\s+(?:of|from|by)\s+(.+)", re.IGNORECASE),
    re.compile(r"(?:did|has)\s+(.+?)\s+(?:give|given|donate|donated)\b", re.IGNORECASE),
]
_TRAILING = re.compile(r"\s+(?:this|last|in)\s+(?:year|month|week|\d{4}).*$", re.IGNORECASE)

HELP = ('Ask me about a donor: "find Ada Lovelace", "how much did Ada Lovelace give?" or '
        '"gifts of Ada Lovelace". I only read donors and gifts; I change nothing.')


def phone(value: str, field: str, v: Violations) -> str:
    """E.164, or a violation on `field`."""
    try:
        parsed = phonenumbers.parse(value.strip(), None)
        if not phonenumbers.is_valid_number(parsed):
            raise ValueError
    except (phonenumbers.NumberParseException, ValueError):
        v.add(field, "is not a valid phone number in international form (+<country><number>)")
        return ""
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def plan(question: str) -> tuple[str, dict[str, str]] | None:
    """The first read tool call for a question (None: nothing to look up, the help text answers)."""
    text = " ".join(question.split())[:QUESTION_MAX]
    ids = _UUID.findall(text)
    if ids:
        return "get_donor", {"donor_id": ids[0]}
    for pattern in _ASKS:
        m = pattern.search(text)
        if m:
            name = _TRAILING.sub("", m.group(1)).strip(" ?.!,'\"")
            name = re.sub(r"'s$", "", name)[:200]
            if name:
                return "search_donors", {"query": name}
    return None


def query_type(tools: list[str]) -> str:
    """seed 000's query_type: what the question turned out to be."""
    if "get_donor" in tools:
        return "donor_gifts"
    if "search_donors" in tools:
        return "donor_search"
    return "help"


def clip(text: str) -> str:
    return text if len(text) <= ANSWER_MAX else text[: ANSWER_MAX - 1] + "…"
