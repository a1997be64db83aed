"""Fund rules: a fund's own fields, a gift's split across funds (exact, one per fund), and how
a gift's refunds and a corrected amount are shared out over its split (largest remainder, so
the shares add up exactly)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from chassis.errors import FailedPrecondition, Violations
from services.crm.domain.donations import check_amount, distinct_id

RESTRICTIONS = ("unrestricted", "restricted")
STATUSES = ("active", "closed")
MAX_NAME, MAX_CODE, MAX_DESCRIPTION = 200, 50, 2000
MAX_ALLOCATIONS = 50
CENT = Decimal("0.01")
UPDATE_PATHS = {"name": "name", "code": "code", "description": "description", "restriction": "restriction",
                "status": "status"}


@dataclass
class FundFields:
    name: str
    code: str | None
    description: str | None
    restriction: str | None  # None: unspecified
    status: str | None


def normalize(f: FundFields, path: str, v: Violations, attrs: list[str] | None = None) -> FundFields:
    """Checked and trimmed; unspecified restriction and status take their defaults on create."""
    name = (f.name or "").strip()
    if attrs is None or "name" in attrs:
        v.check_text(f"{path}.name", name, MAX_NAME, required=True)
    code = (f.code or "").strip() or None
    if code:
        v.check_text(f"{path}.code", code, MAX_CODE)
    if f.description and len(f.description) > MAX_DESCRIPTION:
        v.add(f"{path}.description", f"must be at most {MAX_DESCRIPTION} characters")
    if f.restriction is not None and f.restriction not in RESTRICTIONS:
        v.add(f"{path}.restriction", f"must be one of {', '.join(RESTRICTIONS)}")
    if f.status is not None and f.status not in STATUSES:
        v.add(f"{path}.status", f"must be one of {', '.join(STATUSES)}")
    return FundFields(name=name, code=code, description=f.description or None,
                      restriction=f.restriction or "unrestricted", status=f.status or "active")


@dataclass(frozen=True)
class AllocationInput:
    fund_id: str
    amount: Decimal | None
    currency: str


@dataclass(frozen=True)
class Allocation:
    fund_id: uuid.UUID
    amount: Decimal


def check_split(items: list[AllocationInput], path: str, v: Violations) -> list[Allocation]:
    """Each allocation's own rules, and one per fund."""
    if len(items) > MAX_ALLOCATIONS:
        v.add(path, f"must name at most {MAX_ALLOCATIONS} allocations")
        return []
    out: list[Allocation] = []
    seen: set[uuid.UUID] = set()
    for i, a in enumerate(items):
        at = f"{path}[{i}]"
        fid = distinct_id(a.fund_id, seen, f"{at}.fund_id", v, what="fund", repeated="fund allocated")
        if a.amount is None:
            v.add(f"{at}.amount", "is required")
        else:
            check_amount(a.amount, a.currency, f"{at}.amount", v)
        if fid is not None and a.amount is not None:
            out.append(Allocation(fid, a.amount))
    return out


def check_against_gift(items: list[AllocationInput], amount: Decimal | None, currency: str, path: str,
                       v: Violations) -> None:
    """In the gift's currency, adding up to its amount exactly."""
    if not items or amount is None:
        return
    for i, a in enumerate(items[:MAX_ALLOCATIONS]):
        if a.amount is not None and a.currency and a.currency != currency:
            v.add(f"{path}[{i}].amount.currency_code", f"must be the gift's currency, {currency}")
    total = sum((a.amount for a in items if a.amount is not None), Decimal(0))
    if total != amount:
        v.add(path, f"must add up to the gift's amount, {amount}; they add up to {total}")


def share(total: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """`total` shared out in proportion to `weights`, in cents, adding up to `total` exactly
    (largest remainder; ties to the earlier weight)."""
    whole = sum(weights, Decimal(0))
    if whole <= 0:
        return [Decimal(0) for _ in weights]
    raw = [total * w / whole for w in weights]
    floors = [r.quantize(CENT, rounding=ROUND_DOWN) for r in raw]
    left = int(((total - sum(floors, Decimal(0))) / CENT).to_integral_value())
    order = sorted(range(len(weights)), key=lambda i: (-(raw[i] - floors[i]), i))
    for i in order[:left]:
        floors[i] += CENT
    return floors


def rescale(amounts: list[Decimal], new_total: Decimal, donation_id: str) -> list[Decimal]:
    """A corrected gift amount carried over its split, in proportion; an allocation that would
    come to nothing is FAILED_PRECONDITION (set the split anew with SetDonationAllocations)."""
    out = share(new_total, amounts)
    if any(a <= 0 for a in out):
        raise FailedPrecondition(f"donation {donation_id}: the new amount cannot be split over its {len(amounts)} "
                                 "funds in proportion; set its allocations anew", reason="SPLIT_TOO_SMALL")
    return out


def check_open(statuses: dict[uuid.UUID, str], split: list[Allocation], path: str, v: Violations) -> None:
    for i, a in enumerate(split):
        status = statuses.get(a.fund_id)
        if status is None:
            v.add(f"{path}[{i}].fund_id", "no such fund")
        elif status != "active":
            v.add(f"{path}[{i}].fund_id", "is a closed fund; it takes no new allocations")
