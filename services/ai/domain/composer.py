"""The built-in grounded composer: no model. It writes from the donor's facts with templates,
so the whole pipeline runs offline, and every result it makes says so (model "builtin-composer").

It never reads free text as instructions: staff notes, web pages and the organization's
instructions are not interpreted (notes never reach a donor's email at all), so nothing in them
can change what it writes or its format.
"""

from __future__ import annotations

import re
from datetime import date

from services.ai.domain.facts import Claim, DonorFacts, ResearchResult, Source
from services.ai.domain.models import BUILTIN_MODEL

_PLACEHOLDER = re.compile(r"\{([a-z_]{1,40})\}")


def money(amount: str, currency: str) -> str:
    symbol = {"USD": "$", "EUR": "€", "GBP": "£"}.get(currency)
    return f"{symbol}{amount}" if symbol else f"{amount} {currency}"


def human_date(iso: str) -> str:
    try:
        d = date.fromisoformat(iso)
    except ValueError:
        return iso
    return f"{d.strftime('%B')} {d.day}, {d.year}"


def placeholders(facts: DonorFacts, signer: str) -> dict[str, str]:
    gift = facts.last_gift
    return {
        "first_name": facts.first_name or "friend",
        "last_name": facts.last_name,
        "name": facts.name,
        "city": facts.city,
        "last_gift_amount": money(gift.amount, gift.currency) if gift else "",
        "last_gift_date": human_date(gift.date) if gift else "",
        "last_gift_project": gift.project if gift else "",
        "gift_count": str(len(facts.gifts)),
        "signer_name": signer,
    }


def fill(template: str, values: dict[str, str]) -> str:
    """{name}-style placeholders filled; anything else (unknown names, braces) left as written."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def compose_email(facts: DonorFacts, *, signer: str, template: str = "",
                  organization: str = "") -> tuple[str, str]:
    """(subject, body) of one donor's email, from their own facts."""
    values = placeholders(facts, signer or "The team")
    first = values["first_name"]
    gift = facts.last_gift
    if template:
        body = fill(template, values)
    else:
        lines = [f"Dear {first},", ""]
        if gift is not None:
            where = f" to {gift.project}" if gift.project else ""
            lines.append(f"Thank you for your gift of {values['last_gift_amount']}{where} on "
                         f"{values['last_gift_date']}.")
            if len(facts.gifts) > 1:
                totals = ", ".join(money(v, c) for c, v in sorted(facts.lifetime.items()))
                lines.append(f"Across {len(facts.gifts)} gifts you have given {totals}"
                             f"{' in all' if totals else ''}: your steady support makes our work possible.")
            else:
                lines.append("Your support makes our work possible.")
        else:
            lines.append("Thank you for being part of our community. We would love to tell you more about our work.")
        if organization:
            lines.append(f"Everyone at {organization} is grateful.")
        lines += ["", "With gratitude,", values["signer_name"]]
        body = "\n".join(lines)
    subject = f"Thank you, {first}" if gift is not None else f"{first}, an update from us"
    return subject, body


def summarise_research(facts: DonorFacts, sources: list[Source]) -> ResearchResult:
    """Claims drawn from the sources as they are (each linked to its source), no inference."""
    claims: list[Claim] = []
    if sources and not sources[0].url.startswith("givance:"):
        for s in sources:
            sentence = first_sentence(s.text) or s.title
            if sentence:
                claims.append(Claim(f"{s.title}: {sentence}" if s.title and s.title not in sentence else sentence,
                                    (s.id,)))
        summary = (f"{len(sources)} public source(s) mention {facts.name}; the claims below quote them "
                   "(written by the built-in composer, no model: check each source).")
    else:
        record = sources[0].id if sources else "s1"
        gift = facts.last_gift
        if gift is not None:
            claims.append(Claim(f"{facts.name} has given {len(facts.gifts)} recorded gift(s); the latest was "
                                f"{money(gift.amount, gift.currency)} on {human_date(gift.date)}.", (record,)))
            for currency, total in sorted(facts.lifetime.items()):
                claims.append(Claim(f"Lifetime giving: {money(total, currency)}.", (record,)))
        else:
            claims.append(Claim(f"{facts.name} has no recorded gifts yet.", (record,)))
        if facts.journey_stage:
            claims.append(Claim(f"Journey stage: {facts.journey_stage}.", (record,)))
        if facts.city:
            claims.append(Claim(f"Lives in {facts.city}.", (record,)))
        summary = (f"No web search is configured: this research on {facts.name} comes only from the "
                   "organization's own records (written by the built-in composer, no model).")
    return ResearchResult(summary=summary, claims=claims, model=BUILTIN_MODEL)


def first_sentence(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    if not text:
        return ""
    m = re.search(r"(.+?[.!?])(\s|$)", text)
    sentence = m.group(1) if m else text
    return sentence[:limit]
