"""Giving insight rules: what a request may ask for, and the exact arithmetic on the figures
the database sums (averages to cents and retention to 4 decimals, both half-even)."""

from __future__ import annotations

import re
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

from chassis.errors import Violations

YEAR_MIN, YEAR_MAX = 1900, 2200
MAX_PERIODS = 400
DEFAULT_CURRENCY = "USD"
YEAR, QUARTER, MONTH = "year", "quarter", "month"
_MONTHS = {YEAR: 12, QUARTER: 3, MONTH: 1}
_CURRENCY = re.compile(r"^[A-Z]{3}$")
CENT = Decimal("0.01")
RATIO = Decimal("0.0001")


def currency(value: str, field: str, v: Violations) -> str:
    if not value:
        return DEFAULT_CURRENCY
    if not _CURRENCY.match(value):
        v.add(field, "must be a three-letter ISO 4217 code in capitals")
    return value


def year(value: int, field: str, v: Violations) -> int:
    if not YEAR_MIN <= value <= YEAR_MAX:
        v.add(field, f"must be between {YEAR_MIN} and {YEAR_MAX}")
    return value


def period_start(unit: str, d: date) -> date:
    """The first day of the calendar period holding d."""
    months = _MONTHS[unit]
    return date(d.year, (d.month - 1) // months * months + 1, 1)


def period_count(unit: str, start: date, end: date) -> int:
    """How many whole periods the range touches (start <= end)."""
    months = _MONTHS[unit]
    a, b = period_start(unit, start), period_start(unit, end)
    return ((b.year - a.year) * 12 + b.month - a.month) // months + 1


def check_range(unit: str, start: date | None, end: date | None, v: Violations) -> None:
    if start is None or end is None:
        return
    if start > end:
        v.add("end_date", "must not be before start_date")
    elif period_count(unit, start, end) > MAX_PERIODS:
        v.add("end_date", f"the range may span at most {MAX_PERIODS} periods")


def average(total: Decimal, count: int) -> Decimal:
    if count == 0:
        return Decimal("0.00")
    return (total / Decimal(count)).quantize(CENT, rounding=ROUND_HALF_EVEN)


def retention(retained: int, previous: int) -> Decimal | None:
    """retained / previous to 4 decimals; None when the previous period had no donors."""
    if previous == 0:
        return None
    return (Decimal(retained) / Decimal(previous)).quantize(RATIO, rounding=ROUND_HALF_EVEN)
