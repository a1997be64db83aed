"""Usage metering: which event counts toward which metric, in which monthly period."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from services.billing.domain.invoices import Line

METRICS = ("donations", "donors", "members", "emails", "ai_tokens")
# The plan entitlement each metric is limited by (per period for emails and AI tokens).
LIMIT_OF = {"donors": "donors", "members": "seats", "emails": "emails_per_month", "ai_tokens": "ai_tokens_per_month"}


def period_of(at: datetime | date) -> date:
    """The calendar month (UTC) a moment counts in, as its first day."""
    return date(at.year, at.month, 1)


# What a metered metric is called on an invoice line.
LABELS = {"emails": "Emails sent", "ai_tokens": "AI tokens", "donations": "Donations", "donors": "Donors",
          "members": "Members"}


def months(since: date, until: date) -> list[date]:
    """The calendar months from `since` up to, not including, `until` (first days)."""
    out, m = [], period_of(since)
    while m < until:
        out.append(m)
        m = date(m.year + m.month // 12, m.month % 12 + 1, 1)
    return out


def next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def overage_lines(month: date, counts: dict[str, int], usage_prices: dict[str, dict]) -> list[Line]:
    """A closed month's metered lines: what was used over the plan's included quantity, in whole
    packages rounded up (Stripe's package pricing: 2,500 emails over at $1.00 per 1,000 is 3 x $1.00)."""
    lines = []
    for metric in sorted(usage_prices):
        price = usage_prices[metric]
        included, package = int(price.get("included", 0)), max(1, int(price.get("package", 1)))
        used = int(counts.get(metric, 0))
        over = used - included
        if over <= 0:
            continue
        packages = -(-over // package)
        unit = f"{package:,}" if package > 1 else "one"
        text = f"{LABELS.get(metric, metric)}, {month:%B %Y}: {used:,} used, {included:,} included"
        lines.append(Line("usage", f"{text}, {packages} x {unit} over", Decimal(str(price["price"])),
                          Decimal(packages)))
    return lines
