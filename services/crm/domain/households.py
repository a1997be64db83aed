"""Household rules: the name and salutations derived from the members (NPSP's household
naming: "Okafor Household", "Okafor and Reyes Household"; "Ngozi and Emeka Okafor"), who is
primary, and the limits."""

from __future__ import annotations

from dataclasses import dataclass

from chassis.errors import Violations

MAX_NAME = 200
MAX_MEMBERS = 50
LEAVE_REASONS = ("moved", "removed", "merged", "deleted")


@dataclass(frozen=True)
class MemberName:
    first: str
    last: str


def _and(parts: list[str]) -> str:
    parts = [p for p in parts if p]
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _lasts(members: list[MemberName]) -> list[str]:
    seen: list[str] = []
    for m in members:
        last = m.last.strip()
        if last and last.casefold() not in {s.casefold() for s in seen}:
            seen.append(last)
    return seen


def derived_name(members: list[MemberName]) -> str:
    lasts = _lasts(members)
    return f"{_and(lasts[:3])} Household" if lasts else "Household"


def salutations(members: list[MemberName]) -> tuple[str, str]:
    """(formal, informal), primary member first: one family name gives "Ngozi and Emeka
    Okafor"; several give "Ngozi Okafor and Tomas Reyes"."""
    if not members:
        return "Friends", "Friends"
    firsts = [m.first.strip() for m in members]
    informal = _and(firsts) or _and(_lasts(members))
    lasts = _lasts(members)
    if len(lasts) <= 1:
        formal = " ".join(p for p in (_and(firsts), lasts[0] if lasts else "") if p)
    else:
        formal = _and([" ".join(p for p in (m.first.strip(), m.last.strip()) if p) for m in members])
    return formal or "Friends", informal or "Friends"


def check_name(name: str | None, path: str, v: Violations) -> str | None:
    """The custom name kept, or None (derived)."""
    name = (name or "").strip()
    if not name:
        return None
    v.check_text(path, name, MAX_NAME)
    return name


def next_primary(current: str | None, leaving: str, remaining: list[str]) -> str | None:
    """The primary member after `leaving` leaves: unchanged, or the first remaining member."""
    if current != leaving and current in remaining:
        return current
    return remaining[0] if remaining else None
