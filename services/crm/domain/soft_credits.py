"""Soft credit rules: who may be soft-credited with a gift, with what role and amount.

A gift credits its donor (hard credit) and may soft-credit others. A soft credit is in the
gift's currency, positive, at most the gift's amount, one per donor per gift, never the gift's
own donor. In totals it counts least(amount, what remains of the gift after refunds), and
nothing once the gift is fully refunded, so a refund never leaves a soft total above the gift."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from chassis.errors import FailedPrecondition, Violations
from services.crm.domain.donations import check_amount, distinct_id

ROLES = ("spouse", "household_member", "solicitor", "donor_advised_fund_advisor", "matched_employee",
         "influencer", "other")
MAX_CREDITS = 20


@dataclass(frozen=True)
class SoftCreditInput:
    donor_id: str
    role: str | None  # None: unspecified or unknown (a violation)
    amount: Decimal | None
    currency: str


@dataclass(frozen=True)
class SoftCreditSpec:
    donor_id: uuid.UUID
    role: str
    amount: Decimal


def check_credits(credits: list[SoftCreditInput], path: str, v: Violations) -> list[SoftCreditSpec]:
    """The credits' own rules (ids, roles, amounts, no donor twice); the gift-dependent ones
    (currency, amount at most the gift's, not the gift's donor) are check_against_gift's."""
    if len(credits) > MAX_CREDITS:
        v.add(path, f"must name at most {MAX_CREDITS} soft credits")
        return []
    out: list[SoftCreditSpec] = []
    seen: set[uuid.UUID] = set()
    for i, c in enumerate(credits):
        at = f"{path}[{i}]"
        did = distinct_id(c.donor_id, seen, f"{at}.donor_id", v, what="donor", repeated="donor credited")
        if c.role not in ROLES:
            v.add(f"{at}.role", f"must be one of {', '.join(ROLES)}")
        if c.amount is None:
            v.add(f"{at}.amount", "is required")
        else:
            check_amount(c.amount, c.currency, f"{at}.amount", v)
        if did is not None and c.role in ROLES and c.amount is not None:
            out.append(SoftCreditSpec(did, c.role, c.amount))
    return out


def check_against_gift(credits: list[SoftCreditInput], gift_donor: uuid.UUID | None, amount: Decimal,
                       currency: str, path: str, v: Violations) -> None:
    for i, c in enumerate(credits[:MAX_CREDITS]):
        at = f"{path}[{i}]"
        try:
            same = gift_donor is not None and uuid.UUID(c.donor_id) == gift_donor
        except ValueError:
            same = False
        if same:
            v.add(f"{at}.donor_id", "is the gift's own donor (hard credit), who cannot also be soft-credited")
        if c.amount is not None and c.currency and c.currency != currency:
            v.add(f"{at}.amount.currency_code", f"must be the gift's currency, {currency}")
        elif c.amount is not None and c.amount > amount:
            v.add(f"{at}.amount", f"must be at most the gift's amount, {amount}")


def check_correction(amount: Decimal, largest_credit: Decimal | None, donation_id: str) -> None:
    """A corrected amount keeps every soft credit within the gift."""
    if largest_credit is not None and amount < largest_credit:
        raise FailedPrecondition(
            f"donation {donation_id} has a soft credit of {largest_credit}; its amount cannot be lower",
            reason="AMOUNT_BELOW_SOFT_CREDIT", metadata={"soft_credit": str(largest_credit)})
