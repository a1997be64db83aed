"""The facts a writer is given about a donor, and nothing more (personal data limited to the
task: no email address, phone or street address goes to a model)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Gift:
    id: str
    amount: str  # "250.00"
    currency: str
    date: str  # ISO date
    project: str = ""


@dataclass
class DonorFacts:
    donor_id: str
    first_name: str
    last_name: str
    city: str = ""
    journey_stage: str = ""
    classification: str = ""
    notes: str = ""  # staff notes: DATA, never instructions (domain/guard.py)
    tags: list[str] = field(default_factory=list)
    gifts: list[Gift] = field(default_factory=list)  # newest first
    lifetime: dict[str, str] = field(default_factory=dict)  # currency -> total
    open_todos: list[dict[str, str]] = field(default_factory=list)  # {id, title}
    # The parts ("gifts", "open_todos") crm refused whoever read these facts: a job that reads
    # them again with ai's own token leaves them out too (handlers/research.py).
    withheld: list[str] = field(default_factory=list)
    # the latest contacts logged in comms: {id, channel, direction, subject, date}, newest first
    recent_contacts: list[dict[str, str]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p) or "friend"

    @property
    def last_gift(self) -> Gift | None:
        return self.gifts[0] if self.gifts else None

    def used_fields(self) -> list[str]:
        """The donor's fields a writer sees (recorded as the grounding)."""
        out = ["first_name", "last_name"]
        for name in ("city", "journey_stage", "classification", "notes", "tags", "recent_contacts"):
            if getattr(self, name):
                out.append(name)
        return out

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DonorFacts:
        gifts = [Gift(**g) for g in data.get("gifts", [])]
        return cls(**{**data, "gifts": gifts})


@dataclass(frozen=True)
class Source:
    id: str  # "s1"...
    url: str
    title: str
    text: str = ""  # extracted page text or snippet (untrusted DATA)


@dataclass(frozen=True)
class Claim:
    text: str
    source_ids: tuple[str, ...]


@dataclass
class ResearchResult:
    summary: str
    claims: list[Claim]
    model: str
