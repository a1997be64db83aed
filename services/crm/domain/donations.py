"""Donation rules: money is exact, positive, two decimals; methods from seed 000."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from chassis.errors import Violations

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
