"""crm's gift batch SQL: batches with their entered count and total (summed when read) and the
gifts entered in them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from chassis.db import Connection


@dataclass(slots=True)
class GiftBatch:
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    currency: str
    expected_count: int
    expected_total: Decimal
    status: str
    posted_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime
    entered_count: int
    entered_total: Decimal


@dataclass(slots=True)
class BatchGift:
    id: uuid.UUID
    batch_id: uuid.UUID
    donor_id: uuid.UUID
    project_id: uuid.UUID | None
    amount: Decimal
    currency: str
    date: date
    payment_method: str | None
    reference_number: str | None
    notes: str | None
    tax_deductible: bool
    donation_id: uuid.UUID | None
    created_at: datetime
    pledge_id: uuid.UUID | None


_SELECT = (
    "SELECT b.id, b.organization_id, b.name, b.currency, b.expected_count, b.expected_total, b.status, b.posted_at, "
    "b.version, b.created_at, b.updated_at, "
    "(SELECT count(*) FROM crm.batch_gifts g WHERE g.organization_id = b.organization_id AND g.batch_id = b.id) "
    "AS entered_count, (SELECT COALESCE(sum(g.amount), 0) FROM crm.batch_gifts g "
    "WHERE g.organization_id = b.organization_id AND g.batch_id = b.id) AS entered_total FROM crm.gift_batches b"
)
_GIFT = ("id, batch_id, donor_id, project_id, amount, currency, date, payment_method, reference_number, notes, "
         "tax_deductible, donation_id, created_at, pledge_id")


async def insert(conn: Connection, org: uuid.UUID, bid: uuid.UUID, values: dict[str, Any],
                 request_id: str | None) -> bool:
    return (await conn.execute(
        text("INSERT INTO crm.gift_batches (id, organization_id, name, currency, expected_count, expected_total, "
             "create_request_id) VALUES (:id, :org, :name, :currency, :expected_count, :expected_total, :rid) "
             "ON CONFLICT (organization_id, create_request_id) WHERE create_request_id IS NOT NULL DO NOTHING"),
        {"id": bid, "org": org, "rid": request_id, **values})).rowcount == 1


async def id_by_request_id(conn: Connection, org: uuid.UUID, request_id: str) -> uuid.UUID | None:
    return (await conn.execute(
        text("SELECT id FROM crm.gift_batches WHERE organization_id = :org AND create_request_id = :rid"),
        {"org": org, "rid": request_id})).scalar()


async def lock(conn: Connection, org: uuid.UUID, bid: uuid.UUID) -> bool:
    """FOR UPDATE: gifts are entered and a batch posted one writer at a time."""
    return (await conn.execute(
        text("SELECT 1 FROM crm.gift_batches WHERE organization_id = :org AND id = :id FOR UPDATE"),
        {"org": org, "id": bid})).scalar() is not None


async def get(conn: Connection, org: uuid.UUID, bid: uuid.UUID) -> GiftBatch | None:
    row = (await conn.execute(text(f"{_SELECT} WHERE b.organization_id = :org AND b.id = :id"),
                              {"org": org, "id": bid})).mappings().first()
    return GiftBatch(**row) if row else None


async def page(conn: Connection, org: uuid.UUID, after: list | None, limit: int) -> list[GiftBatch]:
    rows = (await conn.execute(
        text(f"{_SELECT} WHERE b.organization_id = :org AND (CAST(:at AS timestamptz) IS NULL "
             "OR (b.created_at, b.id) < (CAST(:at AS timestamptz), CAST(:aid AS uuid))) "
             "ORDER BY b.created_at DESC, b.id DESC LIMIT :limit"),
        {"org": org, "at": after[0] if after else None, "aid": after[1] if after else None,
         "limit": limit})).mappings().all()
    return [GiftBatch(**r) for r in rows]


async def add_gift(conn: Connection, org: uuid.UUID, bid: uuid.UUID, values: dict[str, Any]) -> BatchGift:
    row = (await conn.execute(
        text("INSERT INTO crm.batch_gifts (id, organization_id, batch_id, donor_id, project_id, amount, currency, "
             "date, payment_method, reference_number, notes, tax_deductible, pledge_id) VALUES (:id, :org, :bid, "
             ":donor_id, :project_id, :amount, :currency, :date, :payment_method, :reference_number, :notes, "
             ":tax_deductible, :pledge_id) "
             f"RETURNING {_GIFT}"), {"id": uuid.uuid4(), "org": org, "bid": bid, **values})).mappings().one()
    return BatchGift(**row)


async def remove_gift(conn: Connection, org: uuid.UUID, bid: uuid.UUID, gid: uuid.UUID) -> bool:
    return (await conn.execute(
        text("DELETE FROM crm.batch_gifts WHERE organization_id = :org AND batch_id = :bid AND id = :id"),
        {"org": org, "bid": bid, "id": gid})).rowcount == 1


async def gifts(conn: Connection, org: uuid.UUID, bid: uuid.UUID, after: list | None,
                limit: int) -> list[BatchGift]:
    rows = (await conn.execute(
        text(f"SELECT {_GIFT} FROM crm.batch_gifts WHERE organization_id = :org AND batch_id = :bid "
             "AND (CAST(:at AS timestamptz) IS NULL OR (created_at, id) > (CAST(:at AS timestamptz), "
             "CAST(:aid AS uuid))) ORDER BY created_at, id LIMIT :limit"),
        {"org": org, "bid": bid, "at": after[0] if after else None, "aid": after[1] if after else None,
         "limit": limit})).mappings().all()
    return [BatchGift(**r) for r in rows]


async def mark_posted(conn: Connection, org: uuid.UUID, bid: uuid.UUID, recorded: dict[uuid.UUID, uuid.UUID]) -> None:
    await conn.execute(
        text("UPDATE crm.batch_gifts g SET donation_id = t.donation_id, updated_at = now() "
             "FROM unnest(CAST(:gifts AS uuid[]), CAST(:donations AS uuid[])) AS t(gift_id, donation_id) "
             "WHERE g.organization_id = :org AND g.batch_id = :bid AND g.id = t.gift_id"),
        {"org": org, "bid": bid, "gifts": list(recorded), "donations": list(recorded.values())})
    await conn.execute(
        text("UPDATE crm.gift_batches SET status = 'posted', posted_at = now(), version = version + 1, "
             "updated_at = now() WHERE organization_id = :org AND id = :id"), {"org": org, "id": bid})


async def touch(conn: Connection, org: uuid.UUID, bid: uuid.UUID) -> None:
    await conn.execute(text("UPDATE crm.gift_batches SET version = version + 1, updated_at = now() "
                            "WHERE organization_id = :org AND id = :id"), {"org": org, "id": bid})
