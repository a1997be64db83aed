"""crm's matching gift SQL: an employer's match of an employee's gift, pledged then received."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from chassis import sql
from chassis.db import Connection
from chassis.sql import Where


@dataclass(slots=True)
class MatchingGift:
    id: uuid.UUID
    donation_id: uuid.UUID
    employer_donor_id: uuid.UUID
    amount: Decimal
    currency: str
    status: str
    expected_date: date | None
    match_donation_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    version: int
    employee_donor_id: uuid.UUID


# The employee is the matched gift's donor now (a correction may have moved the gift).
_SELECT = ("SELECT m.id, m.donation_id, m.employer_donor_id, m.amount, m.currency, m.status, m.expected_date, "
           "m.match_donation_id, m.created_at, m.updated_at, m.version, d.donor_id FROM crm.matching_gifts m "
           "JOIN crm.donations d ON d.organization_id = m.organization_id AND d.id = m.donation_id")


def _match(row: Any) -> MatchingGift:
    return MatchingGift(*row)


async def insert(conn: Connection, org: uuid.UUID, match_id: uuid.UUID, values: dict[str, Any],
                 request_id: str | None) -> bool:
    """False when the request_id, or the (gift, employer) pair, was used already."""
    result = await conn.execute(
        "INSERT INTO crm.matching_gifts (id, organization_id, donation_id, employer_donor_id, amount, currency, "
        "expected_date, create_request_id) VALUES (:id, :org, :donation_id, :employer_donor_id, :amount, :currency, "
        ":expected_date, :rid) ON CONFLICT DO NOTHING",
        {"id": match_id, "org": org, "rid": request_id, **values})
    return result.rowcount == 1


async def get(conn: Connection, org: uuid.UUID, match_id: uuid.UUID, *, lock: bool = False) -> MatchingGift | None:
    return await sql.first(conn, f"{_SELECT} WHERE m.organization_id = :org AND m.id = :id"
                           f"{' FOR UPDATE OF m' if lock else ''}", {"org": org, "id": match_id}, _match)


async def page(conn: Connection, org: uuid.UUID, *, donation_id: uuid.UUID | None, employer_id: uuid.UUID | None,
               status: str | None, after: list | None, limit: int) -> list[MatchingGift]:
    where = Where("m.organization_id = :org", org=org, limit=limit)
    where.filter("m.donation_id = :gift", gift=donation_id).filter("m.employer_donor_id = :emp", emp=employer_id)
    where.filter("m.status = :status", status=status).keyset("(m.created_at, m.id) <", after)
    return await sql.every(conn, f"{_SELECT} WHERE {where} ORDER BY m.created_at DESC, m.id DESC LIMIT :limit",
                           where.params, _match)


async def mark_received(conn: Connection, org: uuid.UUID, match_id: uuid.UUID, donation_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE crm.matching_gifts SET status = 'received', match_donation_id = :gift, version = version + 1, "
        "updated_at = now() WHERE organization_id = :org AND id = :id",
        {"org": org, "id": match_id, "gift": donation_id})
