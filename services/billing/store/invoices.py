"""Invoices, their lines and the per-organization numbering (gapless: the counter row is
locked by the finalizing transaction, so a rolled-back finalization gives its number back)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from chassis.db import Connection
from chassis.sql import Where


async def insert(conn: Connection, org: uuid.UUID, values: dict[str, Any]) -> uuid.UUID | None:
    """A draft; None when its create_request_id was used already."""
    invoice_id = uuid.uuid4()
    cols = ", ".join(values)
    r = await conn.execute(
        f"INSERT INTO billing.invoices (id, organization_id, status, {cols}) VALUES (:id, :org, 'draft', "
        f"{', '.join(':' + c for c in values)}) ON CONFLICT (organization_id, create_request_id) "
        "WHERE create_request_id IS NOT NULL DO NOTHING", {"id": invoice_id, "org": org, **values})
    return invoice_id if r.rowcount == 1 else None


async def by_request_id(conn: Connection, org: uuid.UUID, request_id: str) -> uuid.UUID | None:
    return (await conn.execute("SELECT id FROM billing.invoices WHERE organization_id = :org AND "
                               "create_request_id = :rid", {"org": org, "rid": request_id})).scalar()


async def add_lines(conn: Connection, org: uuid.UUID, invoice_id: uuid.UUID, lines: list[dict]) -> None:
    await conn.execute(
        "INSERT INTO billing.invoice_lines (id, organization_id, invoice_id, position, kind, description, quantity, "
        "unit_amount, amount) VALUES (:id, :org, :inv, :pos, :kind, :description, :quantity, :unit_amount, :amount)",
        [{"id": uuid.uuid4(), "org": org, "inv": invoice_id, "pos": i, **line} for i, line in enumerate(lines)])


async def set_totals(conn: Connection, org: uuid.UUID, invoice_id: uuid.UUID, totals: dict[str, Decimal]) -> None:
    await conn.execute(
        "UPDATE billing.invoices SET subtotal = :subtotal, discount = :discount, tax_rate = :tax_rate, tax = :tax, "
        "total = :total, updated_at = now() WHERE organization_id = :org AND id = :id AND status = 'draft'",
        {"org": org, "id": invoice_id, **totals})


async def finalize(conn: Connection, org: uuid.UUID, invoice_id: uuid.UUID, at: datetime) -> int:
    """Gives the next number of the organization and opens the invoice."""
    number = (await conn.execute(
        "INSERT INTO billing.invoice_counters (organization_id, last_number) VALUES (:org, 1) "
        "ON CONFLICT (organization_id) DO UPDATE SET last_number = billing.invoice_counters.last_number + 1, "
        "updated_at = now() RETURNING last_number", {"org": org})).scalar()
    await conn.execute(
        "UPDATE billing.invoices SET status = 'open', number = :n, finalized_at = :at, updated_at = now() "
        "WHERE organization_id = :org AND id = :id AND status = 'draft'",
        {"org": org, "id": invoice_id, "n": number, "at": at})
    return number


async def set_status(conn: Connection, org: uuid.UUID, invoice_id: uuid.UUID, status: str, at: datetime) -> None:
    column = {"paid": "paid_at", "void": "voided_at"}.get(status)
    extra = f", {column} = :at" if column else ""
    await conn.execute(f"UPDATE billing.invoices SET status = :status{extra}, updated_at = now() "
                       "WHERE organization_id = :org AND id = :id", {"org": org, "id": invoice_id, "status": status,
                                                                      "at": at})


async def get(conn: Connection, org: uuid.UUID, invoice_id: uuid.UUID, *, for_update: bool = False) -> dict | None:
    lock = " FOR UPDATE" if for_update else ""
    r = (await conn.execute(f"SELECT * FROM billing.invoices WHERE organization_id = :org AND id = :id{lock}",
                            {"org": org, "id": invoice_id})).first()
    if r is None:
        return None
    inv = dict(r)
    inv["lines"] = [dict(x) for x in (await conn.execute(
        "SELECT kind, description, quantity, unit_amount, amount FROM billing.invoice_lines "
        "WHERE organization_id = :org AND invoice_id = :id ORDER BY position", {"org": org, "id": invoice_id})).all()]
    return inv


async def credited(conn: Connection, org: uuid.UUID, invoice_id: uuid.UUID) -> Decimal:
    return (await conn.execute(
        "SELECT COALESCE(-sum(total), 0) FROM billing.invoices WHERE organization_id = :org AND "
        "corrects_invoice_id = :id AND kind = 'credit_note' AND status <> 'void'",
        {"org": org, "id": invoice_id})).scalar()


async def page(conn: Connection, org: uuid.UUID, after: list | None, limit: int) -> list[dict]:
    where = Where("organization_id = :org", org=org, limit=limit).keyset("(created_at, id) <", after)
    ids = (await conn.execute(f"SELECT id FROM billing.invoices WHERE {where} ORDER BY created_at DESC, id DESC "
                              "LIMIT :limit", where.params)).scalars().all()
    return [await get(conn, org, i) for i in ids]


async def open_for_subscription(conn: Connection, org: uuid.UUID, subscription_id: uuid.UUID) -> list[dict]:
    rows = (await conn.execute(
        "SELECT id FROM billing.invoices WHERE organization_id = :org AND subscription_id = :sid AND "
        "status = 'open' AND kind = 'invoice' ORDER BY number", {"org": org, "sid": subscription_id})).scalars().all()
    return [await get(conn, org, i) for i in rows]
