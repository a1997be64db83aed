"""crm's receipt SQL: marking gifts' receipts sent, and a donor's tax receipt for a year."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import text

from chassis.db import Connection
from chassis.sql import exists
from services.crm.store.donations import DONATION_COLUMNS, Donation


class ReceiptGift(NamedTuple):
    id: str
    date: date
    amount: Decimal
    reference_number: str | None
    receipt_sent: bool
    receipt_number: str | None


class ReceiptTotal(NamedTuple):
    """A donor's deductible giving of a year in one currency, net of refunds, and its gifts."""

    currency: str
    total: Decimal
    gift_count: int
    gifts: list[ReceiptGift]


async def lock_many(conn: Connection, org: uuid.UUID, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Lock the gifts (id order) and return those of this tenant."""
    rows = (await conn.execute(
        text("SELECT id FROM crm.donations WHERE organization_id = :org AND id = ANY(CAST(:ids AS uuid[])) "
             "ORDER BY id FOR UPDATE"),
        {"org": org, "ids": sorted(set(ids))},
    )).scalars().all()
    return set(rows)


async def mark_receipts(conn: Connection, org: uuid.UUID, ids: list[uuid.UUID],
                        send_time: datetime) -> tuple[list[Donation], list[uuid.UUID]]:
    """Mark the gifts not marked yet; returns every named gift as it is now, and the ids marked."""
    marked = (await conn.execute(
        text("UPDATE crm.donations SET receipt_sent = true, receipt_sent_date = :t, version = version + 1, "
             "updated_at = now() WHERE organization_id = :org AND id = ANY(CAST(:ids AS uuid[])) "
             "AND NOT receipt_sent RETURNING id"),
        {"org": org, "ids": ids, "t": send_time},
    )).scalars().all()
    rows = (await conn.execute(
        text(f"SELECT {DONATION_COLUMNS} FROM crm.donations WHERE organization_id = :org "
             "AND id = ANY(CAST(:ids AS uuid[])) ORDER BY date DESC, id DESC"),
        {"org": org, "ids": ids},
    )).mappings().all()
    return [Donation(*r) for r in rows], list(marked)


async def donor_exists(conn: Connection, org: uuid.UUID, donor_id: uuid.UUID) -> bool:
    return await exists(conn, "crm.donors", org, donor_id)


# A donor's tax receipt for a year: deductible gifts that still count, net of refunds, per
# currency; amounts travel as text so they stay exact.
_RECEIPT = text(
    """
    SELECT currency, CAST(sum(amount - refunded_amount) AS text) AS total, count(*) AS gift_count,
           json_agg(json_build_object('id', id, 'date', date, 'amount', CAST(amount - refunded_amount AS text),
                                      'reference_number', reference_number, 'receipt_sent', receipt_sent,
                                      'receipt_number', (SELECT r.year || '-' || lpad(r.sequence::text, 6, '0')
                                        FROM crm.tax_receipts r WHERE r.organization_id = d.organization_id
                                          AND r.donation_id = d.id AND r.status = 'issued'))
                    ORDER BY date, id) AS gifts
    FROM crm.donations d
    WHERE organization_id = :org AND donor_id = :donor AND tax_deductible AND refunded_amount < amount
      AND date >= :start AND date < :end
    GROUP BY currency ORDER BY currency
    """
)


async def receipt_summary(conn: Connection, org: uuid.UUID, donor_id: uuid.UUID,
                          year: int) -> list[ReceiptTotal]:
    rows = (await conn.execute(
        _RECEIPT, {"org": org, "donor": donor_id, "start": date(year, 1, 1), "end": date(year + 1, 1, 1)},
    )).mappings().all()
    out = []
    for r in rows:
        gifts = r["gifts"] if not isinstance(r["gifts"], str) else json.loads(r["gifts"])
        out.append(ReceiptTotal(r["currency"], Decimal(r["total"]), r["gift_count"], [
            ReceiptGift(id=g["id"], date=date.fromisoformat(g["date"]), amount=Decimal(g["amount"]),
                        reference_number=g["reference_number"], receipt_sent=g["receipt_sent"],
                        receipt_number=g["receipt_number"]) for g in gifts]))
    return out
