"""Subscription rules: periods, moves between statuses, proration and the dunning schedule."""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from chassis.errors import FailedPrecondition

TRIAL, ACTIVE, PAST_DUE, PAUSED, CANCELLED, UNPAID = "trial", "active", "past_due", "paused", "cancelled", "unpaid"
LIVE = (TRIAL, ACTIVE, PAST_DUE)
CENT = Decimal("0.01")


def add_months(start: datetime, months: int) -> datetime:
    """The same day `months` later, clamped to the month's last day (Jan 31 + 1 month = Feb 28/29)."""
    month0 = start.month - 1 + months
    year, month = start.year + month0 // 12, month0 % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day)


def period_end(start: datetime, cycle: str) -> datetime:
    return add_months(start, 12 if cycle == "yearly" else 1)


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def prorate(price: Decimal, period_start: datetime, period_end_: datetime, now: datetime) -> Decimal:
    """The share of `price` for what is left of the period at `now`, to the cent (Stripe's
    proration by the second)."""
    total = (period_end_ - period_start).total_seconds()
    left = min(total, max(0.0, (period_end_ - now).total_seconds()))
    if total <= 0:
        return Decimal(0)
    return money(price * Decimal(int(left)) / Decimal(int(total)))


def require(status: str, allowed: tuple[str, ...], action: str) -> None:
    if status not in allowed:
        raise FailedPrecondition(f"a {status} subscription cannot be {action}", reason="INVALID_SUBSCRIPTION_STATE",
                                 metadata={"status": status, "action": action})


def retry_schedule(spec: str) -> list[int]:
    """'1,3,5' -> [1, 3, 5]: days after the failed renewal at which each retry is made."""
    return sorted({int(x) for x in spec.split(",") if x.strip()})


def next_retry(failed_at_period_start: datetime, attempts: int, days: list[int]) -> datetime | None:
    """When the next retry is due after `attempts` failures (the first is the renewal itself), or
    None when the schedule is spent."""
    if attempts - 1 >= len(days):
        return None
    return failed_at_period_start + timedelta(days=days[attempts - 1])
