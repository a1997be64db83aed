"""Invoice arithmetic, exact in decimal: lines, a discount, tax, total; numbering; credit notes."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from chassis.errors import FailedPrecondition, InvalidArgument

CENT = Decimal("0.01")
DRAFT, OPEN, PAID, VOID, UNCOLLECTIBLE = "draft", "open", "paid", "void", "uncollectible"
MOVES = {OPEN: {PAID, VOID, UNCOLLECTIBLE}, UNCOLLECTIBLE: {PAID, VOID}, DRAFT: {OPEN, VOID}}
REASON_MAX = 500


@dataclass
class Line:
    kind: str  # plan, proration, usage, discount, credit
    description: str
    unit_amount: Decimal
    quantity: Decimal = Decimal(1)

    @property
    def amount(self) -> Decimal:
        return cents(self.unit_amount * self.quantity)


@dataclass
class Totals:
    subtotal: Decimal
    discount: Decimal
    tax: Decimal
    total: Decimal


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def discount_of(subtotal: Decimal, percent_off: Decimal | None, amount_off: Decimal | None) -> Decimal:
    """A coupon's discount on a subtotal: never more than the subtotal, never on a credit."""
    if subtotal <= 0:
        return Decimal(0)
    if percent_off is not None:
        return min(subtotal, cents(subtotal * percent_off / 100))
    if amount_off is not None:
        return min(subtotal, cents(amount_off))
    return Decimal(0)


def totals(lines: list[Line], discount: Decimal, tax_rate: Decimal) -> Totals:
    subtotal = sum((line.amount for line in lines), Decimal(0))
    net = subtotal - discount
    tax = cents(net * tax_rate) if net > 0 else Decimal(0)
    return Totals(subtotal=cents(subtotal), discount=cents(discount), tax=tax, total=cents(net + tax))


def check_move(current: str, new: str, invoice_id: str) -> None:
    if new not in MOVES.get(current, set()):
        raise FailedPrecondition(f"invoice {invoice_id} is {current}: it cannot become {new}",
                                 reason="INVALID_INVOICE_TRANSITION", metadata={"status": current, "to": new})


def check_credit(invoice_status: str, invoice_total: Decimal, credited: Decimal, amount: Decimal) -> None:
    """A credit note corrects a finalized invoice, for at most what is left of its total."""
    if invoice_status in (DRAFT, VOID):
        raise FailedPrecondition(f"a {invoice_status} invoice takes no credit note (edit or void it instead)",
                                 reason="INVOICE_NOT_FINALIZED")
    if amount <= 0 or amount != cents(amount):
        raise InvalidArgument.field("amount", "must be positive with at most 2 decimals")
    if credited + amount > invoice_total:
        raise InvalidArgument.field("amount", f"must be at most {invoice_total - credited} (the invoice's total less "
                                              "earlier credit notes)")


def number_text(number: int | None) -> str:
    return f"INV-{number:06d}" if number else ""
