"""The plan catalog's rules: what a plan version holds and how prices compare."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from chassis.errors import Violations

CYCLES = ("monthly", "yearly")
ENTITLEMENT_KEYS = ("seats", "donors", "ai_tokens_per_month", "emails_per_month", "storage_gb", "agents")
UNLIMITED = -1
CODE = re.compile(r"^[a-z0-9][a-z0-9-]{0,49}$")
CURRENCY = re.compile(r"^[A-Z]{3}$")
NAME_MAX = 200
PRICE_MAX = Decimal("1000000")
CENT = Decimal("0.01")
METERED = ("emails", "ai_tokens", "donations", "donors", "members")  # domain.usage.METRICS
PACKAGE_MAX = 1_000_000_000
INCLUDED_MAX = 10**15


@dataclass
class PlanFields:
    code: str = ""
    name: str = ""
    currency: str = ""
    prices: dict[str, Decimal] = field(default_factory=dict)  # cycle -> price
    trial_days: int = 0
    tax_rate: str = ""
    entitlements: dict[str, int] = field(default_factory=dict)
    # (metric, included, package size, package price) per metered metric, as given
    usage_prices: list[tuple[str, int, int, Decimal | None]] = field(default_factory=list)
    problems: dict[str, tuple[str, str]] = field(default_factory=dict)


def check(p: PlanFields, v: Violations) -> Decimal:
    """Reports every bad field of a new plan version; returns its tax rate."""
    for f, d in p.problems.values():
        v.add(f, d)
    if not CODE.match(p.code or ""):
        v.add("plan.code", "must be 1 to 50 lowercase letters, digits or dashes, starting with a letter or digit")
    v.check_text("plan.name", p.name.strip(), NAME_MAX, required=True)
    if not CURRENCY.match(p.currency or ""):
        v.add("plan.currency_code", "must be an ISO 4217 code such as USD")
    if not p.prices and "prices" not in p.problems:
        v.add("plan.prices", "at least one price is required")
    for cycle, price in p.prices.items():
        if price < 0 or price > PRICE_MAX or price != price.quantize(CENT):
            v.add("plan.prices", f"the {cycle} price must be between 0 and {PRICE_MAX} with at most 2 decimals")
    if not 0 <= p.trial_days <= 365:
        v.add("plan.trial_days", "must be between 0 and 365")
    rate = Decimal(0)
    if p.tax_rate:
        try:
            rate = Decimal(p.tax_rate)
            if not (0 <= rate < 1) or rate != rate.quantize(Decimal("0.000001")):
                raise InvalidOperation
        except (InvalidOperation, ValueError):
            v.add("plan.tax_rate", "must be a decimal fraction from 0 up to 1 with at most 6 decimals, e.g. 0.2")
    seen: set[str] = set()
    for i, (metric, included, package, price) in enumerate(p.usage_prices):
        at = f"plan.usage_prices[{i}]"
        if metric not in METERED:
            v.add(f"{at}.metric", f"must be one of {', '.join(METERED)}")
        elif metric in seen:
            v.add(f"{at}.metric", f"{metric} is priced twice")
        seen.add(metric)
        if not 0 <= included <= INCLUDED_MAX:
            v.add(f"{at}.included", f"must be between 0 and {INCLUDED_MAX:,}")
        if not 1 <= package <= PACKAGE_MAX:
            v.add(f"{at}.package_size", f"must be between 1 and {PACKAGE_MAX:,}")
        if price is not None and (price < 0 or price > PRICE_MAX or price != price.quantize(CENT)):
            v.add(f"{at}.package_price", f"must be between 0 and {PRICE_MAX} with at most 2 decimals")
    for key, value in p.entitlements.items():
        if value < UNLIMITED:
            v.add(f"plan.entitlements.{key}", "must be -1 (unlimited), 0 or more")
    return rate


def monthly_equivalent(prices: dict[str, Decimal | None], cycle: str) -> Decimal:
    """The price per month of a plan on a cycle, to tell an upgrade from a downgrade."""
    price = prices.get(cycle)
    if price is None:
        return Decimal(0)
    return price / 12 if cycle == "yearly" else price


def within(limit: int, used: int, adding: int = 1) -> bool:
    """Whether `adding` more fits a limit (-1 unlimited)."""
    return limit == UNLIMITED or used + adding <= limit


def usage_prices(p: PlanFields) -> dict[str, dict]:
    """The checked usage prices as the catalog stores them."""
    return {m: {"included": inc, "package": pkg, "price": f"{price or 0:.2f}"} for m, inc, pkg, price in p.usage_prices}
