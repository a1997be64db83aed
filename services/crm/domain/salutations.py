"""Salutations: how a letter addresses a donor, derived from both names of a couple.

The formal salutation is the addressee line ("John and Mary Smith", "John Smith and Mary
Jones"); the informal one is the greeting ("John and Mary"). NPSP calls them the formal
and informal greeting, Bloomerang the envelope name and the informal name. A donor may
carry their own; otherwise they are derived when read, so they follow every name change.
"""

from __future__ import annotations

from dataclasses import dataclass

FALLBACK = "Friend"  # "Dear Friend" when a record has no names at all
MAX_SALUTATION = 300


@dataclass(frozen=True)
class Names:
    first: str = ""
    last: str = ""
    spouse_first: str = ""
    spouse_last: str = ""
    couple: bool = False


def _join(*parts: str) -> str:
    return " ".join(p for p in (p.strip() for p in parts) if p)


def formal(n: Names) -> str:
    first, last = n.first.strip(), n.last.strip()
    s_first, s_last = n.spouse_first.strip(), n.spouse_last.strip()
    if not n.couple or not (s_first or s_last):
        return _join(first, last) or FALLBACK
    if not (first or last):
        return _join(s_first, s_last) or FALLBACK
    if not s_last or s_last.casefold() == last.casefold():
        # One family name: "John and Mary Smith"; without first names, "Mr. and Mrs." is a
        # guess about gender we don't make: "The Smith Family".
        if first and s_first:
            return f"{first} and {s_first} {last}".strip()
        return f"The {last} Family" if last else _join(first or s_first)
    if not last:
        return f"{first} and {_join(s_first, s_last)}"
    return f"{_join(first, last)} and {_join(s_first, s_last)}"


def informal(n: Names) -> str:
    first, s_first = n.first.strip(), n.spouse_first.strip()
    if n.couple and first and s_first:
        return f"{first} and {s_first}"
    if first or s_first:
        return first or s_first
    return formal(n)


def stored(value: str | None, derived: str) -> str | None:
    """What to keep for a salutation written by a client: None when it is empty or equals
    the derived one (so reading a donor and writing it back keeps it derived)."""
    value = (value or "").strip()
    if not value or value == derived:
        return None
    return value
