"""Donation rules: money is exact, positive, two decimals; methods from seed 000; the
recurring schedule; refunds (never more than what remains); corrections (AIP-134 masks)."""

from __future__ import annotations

import calendar
import re
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from chassis.errors import FailedPrecondition, Violations

PAYMENT_METHODS = ("cash", "check", "credit_card", "wire", "crypto", "other")
MAX_AMOUNT = Decimal("9999999999.99")  # numeric(12,2)
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
FREQUENCIES = ("weekly", "monthly", "quarterly", "semiannually", "annually")


@dataclass
class DonationFields:
    donor_id: str
    project_id: str | None
    amount: Decimal
    currency: str
    date: date
    payment_method: str | None
    reference_number: str | None
    notes: str | None
    is_recurring: bool
    recurring_frequency: str | None
    tax_deductible: bool
    # On record only (domain.soft_credits.SoftCreditInput); later through SetDonationSoftCredits.
    soft_credits: list = field(default_factory=list)
    # On record only (domain.funds.AllocationInput); later through SetDonationAllocations.
    allocations: list = field(default_factory=list)
    # On record only: the pledge the gift pays, and a tribute (domain.tributes.Tribute).
    pledge_id: str | None = None
    tribute: Any = None


def distinct_id(raw: str, seen: set[uuid.UUID], path: str, v: Violations, *, what: str,
                repeated: str) -> uuid.UUID | None:
    """The id of one line of a gift's list (a soft credit's donor, an allocation's fund): present,
    well formed, and not named by an earlier line (`seen` collects them)."""
    parsed = None
    try:
        parsed = uuid.UUID(raw) if raw else None
    except ValueError:
        pass
    if parsed is None:
        v.add(path, f"must be a {what} id" if raw else "is required")
    elif parsed in seen:
        v.add(path, f"names a {repeated} already on this gift")
    else:
        seen.add(parsed)
    return parsed


def check_amount(amount: Decimal | None, currency: str, path: str, v: Violations) -> None:
    if amount is None:
        return
    if amount <= 0:
        v.add(f"{path}", "must be positive")
    elif amount > MAX_AMOUNT:
        v.add(f"{path}", f"must be at most {MAX_AMOUNT}")
    elif amount != amount.quantize(Decimal("0.01")):
        v.add(f"{path}", "must have at most two decimal places")
    if not CURRENCY_RE.match(currency or ""):
        v.add(f"{path}.currency_code", "must be a three-letter ISO 4217 code such as USD")


def check_recurrence(is_recurring: bool, frequency: str | None, path: str, v: Violations) -> None:
    if frequency and frequency not in FREQUENCIES:
        v.add(f"{path}.recurring_frequency", f"must be one of {', '.join(FREQUENCIES)}")
    if frequency and not is_recurring:
        v.add(f"{path}.recurring_frequency", "is only for recurring gifts")
    if is_recurring and not frequency:
        v.add(f"{path}.recurring_frequency", f"is required for a recurring gift: one of {', '.join(FREQUENCIES)}")


# Months per period; weekly is seven days.
_MONTHS = {"monthly": 1, "quarterly": 3, "semiannually": 6, "annually": 12}


def add_months(day: date, months: int) -> date:
    """day plus whole months, clamped to the month's end (Jan 31 + 1 month = Feb 28/29)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def next_expected_date(gift_date: date, is_recurring: bool, frequency: str | None) -> date | None:
    """A recurring gift's next expected date: one period after the gift; None otherwise."""
    if not is_recurring or frequency not in FREQUENCIES:
        return None
    if frequency == "weekly":
        return gift_date + timedelta(days=7)
    return add_months(gift_date, _MONTHS[frequency])


# Refund state of a gift.
RECORDED, PARTIALLY_REFUNDED, REFUNDED = "recorded", "partially_refunded", "refunded"


def status(amount: Decimal, refunded: Decimal) -> str:
    if refunded <= 0:
        return RECORDED
    return REFUNDED if refunded >= amount else PARTIALLY_REFUNDED


def refund_amount(requested: Decimal | None, amount: Decimal, refunded: Decimal, donation_id: str) -> Decimal:
    """What a refund takes: the requested part or, unset, all that remains. More than remains
    (or nothing left) is FAILED_PRECONDITION."""
    remaining = amount - refunded
    if remaining <= 0:
        raise FailedPrecondition(f"donation {donation_id} is fully refunded already", reason="DONATION_FULLY_REFUNDED")
    if requested is None:
        return remaining
    if requested > remaining:
        raise FailedPrecondition(f"refund of {requested} exceeds the {remaining} that remains of donation "
                                 f"{donation_id}", reason="REFUND_EXCEEDS_REMAINING",
                                 metadata={"remaining": str(remaining)})
    return requested


MAX_REASON = 1000
MAX_NOTES_BYTES = 10_000
MAX_RECEIPT_IDS = 1000

# Correctable field paths of UpdateDonation -> DonationFields attributes ("amount" is the
# whole Money: amount and currency).
UPDATE_PATHS = {
    "amount": ("amount", "currency"), "date": ("date",), "project_id": ("project_id",),
    "payment_method": ("payment_method",), "reference_number": ("reference_number",), "notes": ("notes",),
    "is_recurring": ("is_recurring",), "recurring_frequency": ("recurring_frequency",),
    "tax_deductible": ("tax_deductible",), "donor_id": ("donor_id",),
}


def check_correction(amount: Decimal, currency: str, old_currency: str, refunded: Decimal, donation_id: str) -> None:
    """A correction keeps what was refunded within the gift, in its currency."""
    if refunded > 0 and currency != old_currency:
        raise FailedPrecondition(f"donation {donation_id} has refunds in {old_currency}; its currency cannot change",
                                 reason="DONATION_HAS_REFUNDS")
    if amount < refunded:
        raise FailedPrecondition(f"donation {donation_id} has {refunded} refunded; its amount cannot be lower",
                                 reason="AMOUNT_BELOW_REFUNDED", metadata={"refunded": str(refunded)})


def check_gift(d: DonationFields, v: Violations) -> None:
    """The rules a gift's own values obey, on record and on every correction."""
    check_amount(d.amount, d.currency, "donation.amount", v)
    check_recurrence(d.is_recurring, d.recurring_frequency, "donation", v)
    if d.payment_method is not None and d.payment_method not in PAYMENT_METHODS:
        v.add("donation.payment_method", "is not a known payment method")
    if d.reference_number and len(d.reference_number) > 200:
        v.add("donation.reference_number", "must be at most 200 characters")
    if d.notes and len(d.notes) > MAX_NOTES_BYTES // 4 and len(d.notes.encode()) > MAX_NOTES_BYTES:
        v.add("donation.notes", f"must be at most {MAX_NOTES_BYTES} bytes (UTF-8)")
