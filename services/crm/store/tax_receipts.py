"""crm's numbered tax receipts: the per-year counter, issuing, voiding and reading receipts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from chassis import sql
from chassis.db import Connection
from chassis.sql import Where


@dataclass(slots=True)
class Receipt:
    id: uuid.UUID
    year: int
    sequence: int
    donation_id: uuid.UUID
    donor_id: uuid.UUID
    amount: Decimal
    currency: str
    gift_date: date
    status: str
    issued_at: datetime
    replaces_id: uuid.UUID | None
    replaced_by_id: uuid.UUID | None
    void_reason: str | None
    voided_at: datetime | None

    @property
    def number(self) -> str:
        return f"{self.year}-{self.sequence:06d}"


_COLUMNS = ("id, year, sequence, donation_id, donor_id, amount, currency, gift_date, status, issued_at, "
            "replaces_id, replaced_by_id, void_reason, voided_at")


def _receipt(row) -> Receipt:
    return Receipt(*row)


async def next_sequence(conn: Connection, org: uuid.UUID, year: int) -> int:
    """The year's next number. The counter row stays locked until the transaction ends, so two
    transactions number one after the other, and a rollback gives the number back: no gaps."""
    return (await conn.execute(
        "INSERT INTO crm.receipt_counters AS c (organization_id, year, last_number) VALUES (:org, :year, 1) "
        "ON CONFLICT (organization_id, year) DO UPDATE SET last_number = c.last_number + 1, updated_at = now() "
        "RETURNING last_number",
        {"org": org, "year": year},
    )).scalar()


async def insert(conn: Connection, org: uuid.UUID, receipt_id: uuid.UUID, sequence: int, donation_id: uuid.UUID,
                 donor_id: uuid.UUID, amount: Decimal, currency: str, gift_date: date, issued_at: datetime,
                 replaces_id: uuid.UUID | None) -> Receipt:
    return _receipt((await conn.execute(
        "INSERT INTO crm.tax_receipts (id, organization_id, year, sequence, donation_id, donor_id, amount, currency, "
        "gift_date, issued_at, replaces_id) VALUES (:id, :org, :year, :seq, :gift, :donor, :amount, :currency, "
        f":gift_date, :at, :replaces) RETURNING {_COLUMNS}",
        {"id": receipt_id, "org": org, "year": gift_date.year, "seq": sequence, "gift": donation_id, "donor": donor_id,
         "amount": amount, "currency": currency, "gift_date": gift_date, "at": issued_at, "replaces": replaces_id},
    )).one())


async def void(conn: Connection, org: uuid.UUID, receipt_id: uuid.UUID, reason: str,
               replaced_by_id: uuid.UUID | None) -> None:
    await conn.execute(
        "UPDATE crm.tax_receipts SET status = 'void', voided_at = now(), void_reason = :reason, "
        "replaced_by_id = :by, updated_at = now() WHERE organization_id = :org AND id = :id AND status = 'issued'",
        {"org": org, "id": receipt_id, "reason": reason, "by": replaced_by_id},
    )


async def live_of(conn: Connection, org: uuid.UUID, donation_ids: list[uuid.UUID]) -> dict[uuid.UUID, Receipt]:
    """The live (issued) receipt of each gift that has one."""
    if not donation_ids:
        return {}
    rows = await sql.every(conn, f"SELECT {_COLUMNS} FROM crm.tax_receipts WHERE organization_id = :org "
                           "AND donation_id = ANY(CAST(:ids AS uuid[])) AND status = 'issued'",
                           {"org": org, "ids": donation_ids}, _receipt)
    return {r.donation_id: r for r in rows}


async def last_voided(conn: Connection, org: uuid.UUID, donation_id: uuid.UUID) -> uuid.UUID | None:
    return (await conn.execute(
        "SELECT id FROM crm.tax_receipts WHERE organization_id = :org AND donation_id = :id AND status = 'void' "
        "ORDER BY voided_at DESC, id DESC LIMIT 1", {"org": org, "id": donation_id})).scalar()


async def get(conn: Connection, org: uuid.UUID, receipt_id: uuid.UUID) -> Receipt | None:
    return await sql.by_id(conn, f"SELECT {_COLUMNS} FROM crm.tax_receipts", org, receipt_id, _receipt)


async def page(conn: Connection, org: uuid.UUID, *, donor_id: uuid.UUID | None, donation_id: uuid.UUID | None,
               year: int | None, after: list | None, limit: int) -> list[Receipt]:
    """Newest first: (year, sequence) descending."""
    where = Where("organization_id = :org", org=org, limit=limit)
    where.filter("donor_id = :donor", donor=donor_id).filter("donation_id = :gift", gift=donation_id)
    where.filter("year = :year", year=year).keyset("(year, sequence) <", after)
    return await sql.every(conn, f"SELECT {_COLUMNS} FROM crm.tax_receipts WHERE {where} "
                           "ORDER BY year DESC, sequence DESC LIMIT :limit", where.params, _receipt)
