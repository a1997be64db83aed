"""crm's pledge SQL: pledges, and their received amount summed again from the gifts that pay
them (crm.donations.pledge_id), net of refunds, whenever one of those gifts is written."""

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
class Pledge:
    id: uuid.UUID
    donor_id: uuid.UUID
    project_id: uuid.UUID | None
    amount: Decimal
    currency: str
    start_date: date
    frequency: str
    installment_count: int
    received_amount: Decimal
    payment_count: int
    status: str
    written_off_amount: Decimal | None
    write_off_reason: str | None
    written_off_at: datetime | None
    notes: str | None
    created_at: datetime
    updated_at: datetime
    version: int


_COLUMNS = ("id, donor_id, project_id, amount, currency, start_date, frequency, installment_count, received_amount, "
            "payment_count, status, written_off_amount, write_off_reason, written_off_at, notes, created_at, "
            "updated_at, version")


def _pledge(row: Any) -> Pledge:
    return Pledge(*row)


async def insert(conn: Connection, org: uuid.UUID, pledge_id: uuid.UUID, values: dict[str, Any],
                 request_id: str | None) -> Pledge | None:
    """The new pledge when its donor is live; None for a repeated request_id or a missing donor."""
    return await sql.first(conn, (
        "WITH donor AS (SELECT id FROM crm.donors WHERE organization_id = :org AND id = :donor_id "
        "AND deleted_at IS NULL FOR SHARE) "
        "INSERT INTO crm.pledges (id, organization_id, donor_id, project_id, amount, currency, start_date, frequency, "
        "installment_count, notes, create_request_id) SELECT :id, :org, donor.id, :project_id, :amount, :currency, "
        ":start_date, :frequency, :installment_count, :notes, :rid FROM donor "
        "ON CONFLICT (organization_id, create_request_id) WHERE create_request_id IS NOT NULL DO NOTHING "
        f"RETURNING {_COLUMNS}"), {"id": pledge_id, "org": org, "rid": request_id, **values}, _pledge)


async def by_request_id(conn: Connection, org: uuid.UUID, request_id: str) -> Pledge | None:
    return await sql.first(conn, f"SELECT {_COLUMNS} FROM crm.pledges WHERE organization_id = :org "
                           "AND create_request_id = :rid", {"org": org, "rid": request_id}, _pledge)


async def get(conn: Connection, org: uuid.UUID, pledge_id: uuid.UUID, *, lock: bool = False) -> Pledge | None:
    return await sql.by_id(conn, f"SELECT {_COLUMNS} FROM crm.pledges", org, pledge_id, _pledge, for_update=lock)


async def page(conn: Connection, org: uuid.UUID, *, donor_id: uuid.UUID | None, status: str | None,
               after: list | None, limit: int) -> list[Pledge]:
    where = Where("organization_id = :org", org=org, limit=limit)
    where.filter("donor_id = :donor", donor=donor_id).filter("status = :status", status=status)
    where.keyset("(created_at, id) <", after)
    return await sql.every(conn, f"SELECT {_COLUMNS} FROM crm.pledges WHERE {where} "
                           "ORDER BY created_at DESC, id DESC LIMIT :limit", where.params, _pledge)


# What the gifts paying the pledge bring, net of refunds (fully refunded gifts count for nothing).
PAID_SUMS = (
    "SELECT pledge_id, sum(amount - refunded_amount) AS received, count(*) AS n FROM crm.donations "
    "WHERE organization_id = :org AND pledge_id IS NOT NULL AND refunded_amount < amount"
)


async def paid(conn: Connection, org: uuid.UUID, pledge_id: uuid.UUID) -> tuple[Decimal, int]:
    """What the pledge's gifts bring, net of refunds, and how many count (the caller holds the
    pledge's lock and its gifts' donors' locks, so the sum sees every committed payment)."""
    row = (await conn.execute(f"{PAID_SUMS} AND pledge_id = :id GROUP BY pledge_id",
                              {"org": org, "id": pledge_id})).first()
    return (row[1], row[2]) if row else (Decimal(0), 0)


async def set_received(conn: Connection, org: uuid.UUID, pledge_id: uuid.UUID, received: Decimal, count: int,
                       status: str) -> Pledge:
    return await sql.first(conn, (
        "UPDATE crm.pledges SET received_amount = :received, payment_count = :n, status = :status, "
        f"version = version + 1, updated_at = now() WHERE organization_id = :org AND id = :id RETURNING {_COLUMNS}"),
        {"org": org, "id": pledge_id, "received": received, "n": count, "status": status}, _pledge)


async def write_off(conn: Connection, org: uuid.UUID, pledge_id: uuid.UUID, amount: Decimal, reason: str) -> Pledge:
    return await sql.first(conn, (
        "UPDATE crm.pledges SET status = 'written_off', written_off_amount = :amount, write_off_reason = :reason, "
        "written_off_at = now(), version = version + 1, updated_at = now() "
        f"WHERE organization_id = :org AND id = :id RETURNING {_COLUMNS}"),
        {"org": org, "id": pledge_id, "amount": amount, "reason": reason}, _pledge)
