"""Invoice use cases: list, read, the PDF; credit notes and voiding (platform operations)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from fpdf import FPDF

from chassis.db import Database
from chassis.errors import InvalidArgument, NotFound, Violations
from chassis.resource import Keyset, check_request_id, parse_id
from services.billing.domain import invoices as rules
from services.billing.handlers.invoicing import invoice_event
from services.billing.store import invoices as store

MAX_PAGE = 200


async def list_invoices(db: Database, org: uuid.UUID, page_size: int, page_token: str) -> tuple[list[dict], str]:
    page = Keyset.of(page_size, page_token, ("invoices",), (datetime.fromisoformat, uuid.UUID), maximum=MAX_PAGE)
    async with db.unit_of_work(org) as uow:
        rows = await store.page(uow.conn, org, page.after, page.limit)
    return page.cut(rows, lambda r: (r["created_at"], r["id"]))


async def get_invoice(db: Database, org: uuid.UUID, invoice_id: str) -> dict:
    iid = parse_id(invoice_id, "id")
    async with db.unit_of_work(org) as uow:
        inv = await store.get(uow.conn, org, iid)
    if inv is None:
        raise NotFound(f"invoice {invoice_id} not found")
    return inv


async def credit_note(db: Database, org: uuid.UUID, invoice_id: str, amount: Decimal | None, currency: str,
                      reason: str, request_id: str, now: datetime) -> dict:
    v = Violations()
    iid = parse_id(invoice_id, "invoice_id", v)
    reason = (reason or "").strip()
    v.check_text("reason", reason, rules.REASON_MAX, required=True)
    if amount is None:
        v.add("amount", "is required")
    check_request_id(request_id, v)
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        if request_id:
            first = await store.by_request_id(uow.conn, org, request_id)
            if first is not None:
                return await store.get(uow.conn, org, first)
        inv = await store.get(uow.conn, org, iid, for_update=True)
        if inv is None or inv["kind"] != "invoice":
            raise NotFound(f"invoice {invoice_id} not found")
        if currency != inv["currency"]:
            raise InvalidArgument.field("amount.currency_code", f"must be the invoice's currency, {inv['currency']}")
        rules.check_credit(inv["status"], inv["total"], await store.credited(uow.conn, org, iid), amount)
        note_id = await store.insert(uow.conn, org, {
            "subscription_id": inv["subscription_id"], "kind": "credit_note", "corrects_invoice_id": iid,
            "currency": inv["currency"], "reason": reason, "create_request_id": request_id or None})
        await store.add_lines(uow.conn, org, note_id, [{
            "kind": "credit", "description": f"Credit against {rules.number_text(inv['number'])}: {reason}",
            "quantity": Decimal(1), "unit_amount": -amount, "amount": -amount}])
        await store.set_totals(uow.conn, org, note_id, {"subtotal": -amount, "discount": Decimal(0),
                                                        "tax_rate": Decimal(0), "tax": Decimal(0), "total": -amount})
        number = await store.finalize(uow.conn, org, note_id, now)
        # A credit note is settled at once: refunded, or credited to the next invoice.
        await store.set_status(uow.conn, org, note_id, rules.PAID, now)
        note = await store.get(uow.conn, org, note_id)
        uow.publish("billing.invoice.credit_note_issued", invoice_event(note, number), aggregate_type="invoice",
                    aggregate_id=str(iid))
        uow.audit("billing.invoice.credit_note", "invoice", str(iid), after={"credit_note": str(note_id),
                                                                           "amount": amount, "reason": reason})
        return note


async def void(db: Database, org: uuid.UUID, invoice_id: str, now: datetime) -> dict:
    iid = parse_id(invoice_id, "id")
    async with db.unit_of_work(org) as uow:
        inv = await store.get(uow.conn, org, iid, for_update=True)
        if inv is None:
            raise NotFound(f"invoice {invoice_id} not found")
        rules.check_move(inv["status"], rules.VOID, invoice_id)
        await store.set_status(uow.conn, org, iid, rules.VOID, now)
        inv = await store.get(uow.conn, org, iid)
        uow.publish("billing.invoice.voided", invoice_event(inv), aggregate_type="invoice", aggregate_id=str(iid))
        uow.audit("billing.invoice.void", "invoice", str(iid))
        return inv


def _latin(text: str) -> str:
    """The PDF's core font is Latin-1: anything else becomes '?'."""
    return text.replace("…", "...").encode("latin-1", "replace").decode("latin-1")


def render_pdf(inv: dict) -> bytes:
    """The invoice as a one-page PDF (fpdf2)."""
    pdf = FPDF(format="A4")
    pdf.set_title(f"Invoice {rules.number_text(inv['number']) or 'draft'}")
    pdf.set_creator("Givance billing")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    title = "Credit note" if inv["kind"] == "credit_note" else "Invoice"
    pdf.cell(0, 10, _latin(f"{title} {rules.number_text(inv['number']) or '(draft)'}"),
             new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    for label, value in (("Organization", str(inv["organization_id"])), ("Status", inv["status"]),
                         ("Issued", inv["finalized_at"].date().isoformat() if inv["finalized_at"] else "-"),
                         ("Period", f"{inv['period_start']:%Y-%m-%d} to {inv['period_end']:%Y-%m-%d}"
                          if inv["period_start"] else "-")):
        pdf.cell(40, 6, label)
        pdf.cell(0, 6, _latin(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    cur = inv["currency"]
    with pdf.table(col_widths=(110, 20, 30, 30), text_align=("LEFT", "RIGHT", "RIGHT", "RIGHT")) as table:
        table.row(["Description", "Qty", "Unit", "Amount"])
        for line in inv["lines"]:
            table.row([_latin(line["description"]), f"{line['quantity'].normalize():f}", f"{line['unit_amount']}",
                       f"{line['amount']}"])
    pdf.ln(4)
    for label, value in (("Subtotal", inv["subtotal"]), ("Discount", -inv["discount"]),
                         (f"Tax ({(inv['tax_rate'] * 100).normalize():f}%)", inv["tax"]), ("Total", inv["total"])):
        pdf.cell(160, 6, label, align="R")
        pdf.cell(30, 6, f"{value} {cur}", align="R", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
