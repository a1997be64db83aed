"""Pledge rules: a promise of an amount over a schedule of installments, what was received
applied to them oldest first, the balance and the status (open, fulfilled, written off)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from chassis.errors import FailedPrecondition, Violations

from .donations import CURRENCY_RE, MAX_AMOUNT, add_months

FREQUENCIES = ("once", "weekly", "monthly", "quarterly", "semiannually", "annually")
_MONTHS = {"monthly": 1, "quarterly": 3, "semiannually": 6, "annually": 12}
MAX_INSTALLMENTS = 600
MAX_NOTES = 10_000
MAX_REASON = 1000
OPEN, FULFILLED, WRITTEN_OFF = "open", "fulfilled", "written_off"


@dataclass
class PledgeFields:
    donor_id: str
    project_id: str | None
    amount: Decimal | None
    currency: str
    start_date: date | None
    frequency: str | None
    installment_count: int
    notes: str | None


@dataclass(frozen=True)
class Installment:
    number: int
    due_date: date
    amount: Decimal
    paid: Decimal
    overdue: bool


def check(p: PledgeFields, v: Violations, path: str = "pledge") -> tuple[str, int]:
    """The pledge's own values; returns the frequency and installment count to store."""
    if p.amount is None:
        v.add(f"{path}.amount", "is required")
    elif p.amount <= 0:
        v.add(f"{path}.amount", "must be positive")
    elif p.amount > MAX_AMOUNT:
        v.add(f"{path}.amount", f"must be at most {MAX_AMOUNT}")
    elif p.amount != p.amount.quantize(Decimal("0.01")):
        v.add(f"{path}.amount", "must have at most two decimal places")
    if p.amount is not None and not CURRENCY_RE.match(p.currency or ""):
        v.add(f"{path}.amount.currency_code", "must be a three-letter ISO 4217 code such as USD")
    if p.start_date is None:
        v.add(f"{path}.start_date", "is required")
    frequency = p.frequency or "once"
    count = p.installment_count or 1
    if frequency not in FREQUENCIES:
        v.add(f"{path}.frequency", f"must be one of {', '.join(FREQUENCIES)}")
    if not 1 <= count <= MAX_INSTALLMENTS:
        v.add(f"{path}.installment_count", f"must be between 1 and {MAX_INSTALLMENTS}")
    elif frequency == "once" and count != 1:
        v.add(f"{path}.installment_count", "must be 1 for a one-time pledge")
    elif p.amount is not None and p.amount > 0 and p.amount * 100 < count:
        v.add(f"{path}.installment_count", "leaves an installment of less than a cent")
    if p.notes and len(p.notes.encode()) > MAX_NOTES:
        v.add(f"{path}.notes", f"must be at most {MAX_NOTES} bytes (UTF-8)")
    return frequency, count


def due_date(start: date, frequency: str, k: int) -> date:
    if frequency == "weekly":
        return start + timedelta(days=7 * k)
    return add_months(start, _MONTHS.get(frequency, 0) * k)


def schedule(amount: Decimal, start: date, frequency: str, count: int, received: Decimal, status: str,
             today: date) -> list[Installment]:
    """Installments adding up to the amount exactly (the cents left over go to the first ones),
    with what was received applied oldest first; an open pledge's installment not fully paid by
    its due date is overdue."""
    cents = int(amount * 100)
    base, extra = divmod(cents, count)
    out, left = [], received
    for k in range(count):
        part = Decimal(base + (1 if k < extra else 0)) / 100
        paid = min(part, max(left, Decimal(0)))
        left -= paid
        due = due_date(start, frequency, k)
        out.append(Installment(k + 1, due, part, paid, status == OPEN and paid < part and due < today))
    return out


def status_after(status: str, amount: Decimal, received: Decimal) -> str:
    """Fulfilled once received covers the amount; open again when it no longer does. A
    written-off pledge stays written off."""
    if status == WRITTEN_OFF:
        return status
    return FULFILLED if received >= amount else OPEN


def balance(status: str, amount: Decimal, received: Decimal) -> Decimal:
    return Decimal(0) if status == WRITTEN_OFF else max(amount - received, Decimal(0))


def check_payment(status: str, donor_matches: bool, currency: str, gift_currency: str, pledge_id: str,
                  path: str, v: Violations) -> None:
    """A gift paying a pledge: the pledge's donor's, in its currency, and the pledge not written off."""
    if not donor_matches:
        v.add(path, "is another donor's pledge")
    elif currency != gift_currency:
        v.add(path, f"is a pledge in {currency}; the gift is in {gift_currency}")
    v.raise_if_any()
    if status == WRITTEN_OFF:
        raise FailedPrecondition(f"pledge {pledge_id} was written off; it takes no more payments",
                                 reason="PLEDGE_WRITTEN_OFF")


def check_write_off(status: str, pledge_id: str) -> None:
    if status != OPEN:
        raise FailedPrecondition(f"pledge {pledge_id} is {status.replace('_', ' ')}; only an open one is written off",
                                 reason="PLEDGE_NOT_OPEN")


def check_payment_correction(donor_changed: bool, currency_changed: bool, donation_id: str) -> None:
    """A gift that pays a pledge stays the pledge's donor's, in its currency."""
    if donor_changed or currency_changed:
        what = "donor" if donor_changed else "currency"
        raise FailedPrecondition(f"donation {donation_id} pays a pledge; its {what} cannot change",
                                 reason="PLEDGE_PAYMENT")
