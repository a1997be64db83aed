"""Donor classification from giving history (rules, no model), with the reason, and the todo a
fundraiser would be handed for each class. Research does not change the class: what the
organization's own records say decides it, and the reason says which facts did."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from services.ai.domain.composer import human_date, money
from services.ai.domain.facts import DonorFacts

CLASSES = ("prospect", "new_donor", "active", "loyal", "major_donor", "lapsed")
LAPSED_AFTER_DAYS = 548  # 18 months without a gift
MAJOR_LIFETIME = Decimal("5000")
MAJOR_GIFT = Decimal("1000")


@dataclass(frozen=True)
class Suggestion:
    title: str
    reasoning: str
    confidence: str  # "0.80"


@dataclass(frozen=True)
class Classification:
    label: str
    reason: str
    todo: Suggestion | None


def classify(facts: DonorFacts, today: date) -> Classification:
    name = facts.name
    gifts = facts.gifts
    if not gifts:
        return Classification("prospect", "no recorded gifts", Suggestion(
            f"Introduce {name} to our work", "No gift is recorded yet: a first conversation is the next step.", "0.50"))
    last = gifts[0]
    days = (today - date.fromisoformat(last.date)).days
    lifetime = max((Decimal(v) for v in facts.lifetime.values()), default=sum(Decimal(g.amount) for g in gifts))
    biggest = max(gifts, key=lambda g: Decimal(g.amount))
    when = f"last gift {money(last.amount, last.currency)} on {human_date(last.date)}"
    if days > LAPSED_AFTER_DAYS:
        return Classification("lapsed", f"{when}, {days} days ago", Suggestion(
            f"Re-engage {name}: no gift since {human_date(last.date)}",
            f"{name} gave {len(gifts)} time(s) but not for {days} days; a personal note may bring them back.", "0.70"))
    if lifetime >= MAJOR_LIFETIME or Decimal(biggest.amount) >= MAJOR_GIFT:
        return Classification("major_donor", f"lifetime giving {lifetime}, largest gift "
                                             f"{money(biggest.amount, biggest.currency)}", Suggestion(
            f"Call {name} to thank them personally",
            f"A major donor (largest gift {money(biggest.amount, biggest.currency)}): a call from leadership "
            "keeps the relationship strong.", "0.80"))
    recent = [g for g in gifts if (today - date.fromisoformat(g.date)).days <= 456]
    if len(recent) >= 3:
        return Classification("loyal", f"{len(recent)} gifts in the last 15 months; {when}", Suggestion(
            f"Invite {name} to give monthly",
            f"{len(recent)} gifts in 15 months: a monthly gift would suit how {name} already gives.", "0.60"))
    if len(gifts) == 1:
        return Classification("new_donor", f"one gift so far; {when}", Suggestion(
            f"Welcome {name} and thank them for their first gift",
            "A first gift: a prompt welcome makes a second gift likelier.", "0.75"))
    return Classification("active", f"{len(gifts)} gifts; {when}", None)
