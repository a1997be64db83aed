"""crm's fund SQL: the organization's funds, the gifts' splits across them, and fund totals per
period (aggregated from the allocations at the call: exact by construction)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from chassis.db import Connection
from chassis.errors import AlreadyExists
from services.crm.domain.funds import Allocation


@dataclass(slots=True)
class Fund:
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    code: str | None
    description: str | None
    restriction: str
    status: str
    version: int
    created_at: datetime
    updated_at: datetime


_COLUMNS = ("id, organization_id, name, code, description, restriction, status, version, created_at, "
            "updated_at")


class GiftAllocation(NamedTuple):
    fund_id: uuid.UUID
    amount: Decimal
    refunded_amount: Decimal


class FundTotal(NamedTuple):
    fund_id: uuid.UUID
    period_start: date
    currency: str
    allocated: Decimal
    refunded: Decimal
    gifts: int


def _name_taken(exc: IntegrityError, name: str | None) -> None:
    if getattr(exc.orig, "constraint_name", None) == "funds_name":
        raise AlreadyExists(f"a fund named {name!r} exists already", reason="FUND_NAME_TAKEN") from None


async def insert(conn: Connection, org: uuid.UUID, fund_id: uuid.UUID, values: dict[str, Any],
                 request_id: str | None) -> Fund | None:
    """The new fund, or None when request_id was used already; a name in use is ALREADY_EXISTS."""
    try:
        row = (await conn.execute(
            text("INSERT INTO crm.funds (id, organization_id, name, code, description, restriction, status, "
                 "create_request_id) VALUES (:id, :org, :name, :code, :description, :restriction, :status, :rid) "
                 "ON CONFLICT (organization_id, create_request_id) WHERE create_request_id IS NOT NULL DO NOTHING "
                 f"RETURNING {_COLUMNS}"),
            {"id": fund_id, "org": org, "rid": request_id, **values},
        )).mappings().first()
    except IntegrityError as exc:
        _name_taken(exc, values.get("name"))
        raise
    return Fund(**row) if row else None


async def by_request_id(conn: Connection, org: uuid.UUID, request_id: str) -> Fund | None:
    row = (await conn.execute(
        text(f"SELECT {_COLUMNS} FROM crm.funds WHERE organization_id = :org AND create_request_id = :rid"),
        {"org": org, "rid": request_id})).mappings().first()
    return Fund(**row) if row else None


async def get(conn: Connection, org: uuid.UUID, fund_id: uuid.UUID, *, lock: bool = False) -> Fund | None:
    row = (await conn.execute(
        text(f"SELECT {_COLUMNS} FROM crm.funds WHERE organization_id = :org AND id = :id"
             + (" FOR UPDATE" if lock else "")), {"org": org, "id": fund_id})).mappings().first()
    return Fund(**row) if row else None


async def page(conn: Connection, org: uuid.UUID, status: str | None, after: list | None, limit: int) -> list[Fund]:
    rows = (await conn.execute(
        text(f"SELECT {_COLUMNS} FROM crm.funds WHERE organization_id = :org "
             "AND (CAST(:status AS text) IS NULL OR status = :status) "
             "AND (CAST(:after_name AS text) IS NULL OR (lower(name), id) > (:after_name, CAST(:after_id AS uuid))) "
             "ORDER BY lower(name), id LIMIT :limit"),
        {"org": org, "status": status, "after_name": after[0] if after else None,
         "after_id": after[1] if after else None, "limit": limit})).mappings().all()
    return [Fund(**r) for r in rows]


async def update(conn: Connection, org: uuid.UUID, fund_id: uuid.UUID, values: dict[str, Any]) -> Fund:
    sets = ", ".join(f"{c} = :{c}" for c in values)
    try:
        row = (await conn.execute(
            text(f"UPDATE crm.funds SET {sets}, version = version + 1, updated_at = now() "
                 f"WHERE organization_id = :org AND id = :id RETURNING {_COLUMNS}"),
            {"org": org, "id": fund_id, **values})).mappings().one()
    except IntegrityError as exc:
        _name_taken(exc, values.get("name"))
        raise
    return Fund(**row)


async def statuses(conn: Connection, org: uuid.UUID, fund_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Fund id -> status, the funds held FOR SHARE (a concurrent close waits for this gift)."""
    rows = (await conn.execute(
        text("SELECT id, status FROM crm.funds WHERE organization_id = :org AND id = ANY(CAST(:ids AS uuid[])) "
             "ORDER BY id FOR SHARE"), {"org": org, "ids": sorted(set(fund_ids))})).mappings().all()
    return {r["id"]: r["status"] for r in rows}


async def allocate(conn: Connection, org: uuid.UUID, gift_id: uuid.UUID, split: list[Allocation],
                   refunded: list[Decimal] | None = None) -> None:
    await conn.execute(text(
        "INSERT INTO crm.gift_allocations (organization_id, donation_id, fund_id, amount, refunded_amount, position) "
        "SELECT :org, :gift, t.fund_id, t.amount, t.refunded, t.n FROM unnest(CAST(:funds AS uuid[]), "
        "CAST(:amounts AS numeric[]), CAST(:refunded AS numeric[])) "
        "WITH ORDINALITY AS t(fund_id, amount, refunded, n)"),
        {"org": org, "gift": gift_id, "funds": [a.fund_id for a in split], "amounts": [a.amount for a in split],
         "refunded": refunded or [Decimal(0)] * len(split)})


async def clear(conn: Connection, org: uuid.UUID, gift_id: uuid.UUID) -> None:
    await conn.execute(text("DELETE FROM crm.gift_allocations WHERE organization_id = :org AND donation_id = :gift"),
                       {"org": org, "gift": gift_id})


async def of_gifts(conn: Connection, org: uuid.UUID, gift_ids: list[uuid.UUID],
                   ) -> dict[uuid.UUID, list[GiftAllocation]]:
    if not gift_ids:
        return {}
    rows = (await conn.execute(
        text("SELECT donation_id, fund_id, amount, refunded_amount FROM crm.gift_allocations "
             "WHERE organization_id = :org AND donation_id = ANY(CAST(:ids AS uuid[])) "
             "ORDER BY donation_id, position, fund_id"), {"org": org, "ids": gift_ids})).mappings().all()
    out: dict[uuid.UUID, list[GiftAllocation]] = {}
    for r in rows:
        out.setdefault(r["donation_id"], []).append(GiftAllocation(r["fund_id"], r["amount"], r["refunded_amount"]))
    return out


async def set_shares(conn: Connection, org: uuid.UUID, gift_id: uuid.UUID, funds: list[uuid.UUID],
                     amounts: list[Decimal], refunded: list[Decimal]) -> None:
    """Each allocation's amount and refunded share, in one statement (checked at commit)."""
    await conn.execute(text(
        "UPDATE crm.gift_allocations a SET amount = t.amount, refunded_amount = t.refunded, updated_at = now() "
        "FROM unnest(CAST(:funds AS uuid[]), CAST(:amounts AS numeric[]), CAST(:refunded AS numeric[])) "
        "AS t(fund_id, amount, refunded) WHERE a.organization_id = :org AND a.donation_id = :gift "
        "AND a.fund_id = t.fund_id"),
        {"org": org, "gift": gift_id, "funds": funds, "amounts": amounts, "refunded": refunded})


_TRUNC = {"year": "year", "quarter": "quarter", "month": "month"}


async def totals(conn: Connection, org: uuid.UUID, fund_id: uuid.UUID | None, start: date, end: date,
                 unit: str) -> list[FundTotal]:
    trunc = _TRUNC[unit]  # a constant of the map, never input
    rows = (await conn.execute(
        text(f"SELECT a.fund_id, CAST(date_trunc('{trunc}', d.date) AS date) AS period_start, d.currency, "
             "sum(a.amount) AS allocated, sum(a.refunded_amount) AS refunded, count(*) AS gifts "
             "FROM crm.gift_allocations a JOIN crm.donations d ON d.organization_id = a.organization_id "
             "AND d.id = a.donation_id JOIN crm.funds f ON f.organization_id = a.organization_id "
             "AND f.id = a.fund_id WHERE a.organization_id = :org "
             "AND (CAST(:fund AS uuid) IS NULL OR a.fund_id = :fund) AND d.date BETWEEN :start AND :end "
             "GROUP BY a.fund_id, lower(f.name), 2, d.currency ORDER BY lower(f.name), a.fund_id, 2, d.currency"),
        {"org": org, "fund": fund_id, "start": start, "end": end})).mappings().all()
    return [FundTotal(**r) for r in rows]
