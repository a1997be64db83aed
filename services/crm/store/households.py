"""crm's household SQL: households, the stays of donors in them, and household giving summed
when read from the members' kept totals (crm.donor_giving) and soft credits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import text

from chassis.db import Connection


class Member(NamedTuple):
    donor_id: uuid.UUID
    first_name: str
    last_name: str
    joined_at: datetime


class Membership(NamedTuple):
    id: uuid.UUID
    household_id: uuid.UUID
    donor_id: uuid.UUID
    joined_at: datetime
    left_at: datetime | None
    leave_reason: str | None


class Giving(NamedTuple):
    currency: str
    hard: Decimal
    soft: Decimal


@dataclass(slots=True)
class Household:
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str | None
    primary_donor_id: uuid.UUID | None
    version: int
    created_at: datetime
    updated_at: datetime
    members: list[Member] = field(default_factory=list)
    giving: list[Giving] = field(default_factory=list)


_COLUMNS = "id, organization_id, name, primary_donor_id, version, created_at, updated_at"


async def insert(conn: Connection, org: uuid.UUID, hid: uuid.UUID, name: str | None,
                 request_id: str | None) -> bool:
    return (await conn.execute(
        text("INSERT INTO crm.households (id, organization_id, name, create_request_id) VALUES (:id, :org, :name, "
             ":rid) ON CONFLICT (organization_id, create_request_id) WHERE create_request_id IS NOT NULL DO NOTHING"),
        {"id": hid, "org": org, "name": name, "rid": request_id})).rowcount == 1


async def id_by_request_id(conn: Connection, org: uuid.UUID, request_id: str) -> uuid.UUID | None:
    return (await conn.execute(
        text("SELECT id FROM crm.households WHERE organization_id = :org AND create_request_id = :rid"),
        {"org": org, "rid": request_id})).scalar()


async def get(conn: Connection, org: uuid.UUID, hid: uuid.UUID, *, lock: bool = False) -> Household | None:
    row = (await conn.execute(
        text(f"SELECT {_COLUMNS} FROM crm.households WHERE organization_id = :org AND id = :id"
             + (" FOR UPDATE" if lock else "")), {"org": org, "id": hid})).mappings().first()
    return Household(**row) if row else None


async def lock(conn: Connection, org: uuid.UUID, ids: list[uuid.UUID]) -> dict[uuid.UUID, Household]:
    rows = (await conn.execute(
        text(f"SELECT {_COLUMNS} FROM crm.households WHERE organization_id = :org AND id = ANY(CAST(:ids AS uuid[])) "
             "ORDER BY id FOR UPDATE"), {"org": org, "ids": sorted(set(ids))})).mappings().all()
    return {r["id"]: Household(**r) for r in rows}


async def page(conn: Connection, org: uuid.UUID, after: list | None, limit: int) -> list[Household]:
    rows = (await conn.execute(
        text(f"SELECT {_COLUMNS} FROM crm.households WHERE organization_id = :org "
             "AND (CAST(:at AS timestamptz) IS NULL "
             "OR (created_at, id) < (CAST(:at AS timestamptz), CAST(:aid AS uuid))) "
             "ORDER BY created_at DESC, id DESC LIMIT :limit"),
        {"org": org, "at": after[0] if after else None, "aid": after[1] if after else None,
         "limit": limit})).mappings().all()
    return [Household(**r) for r in rows]


async def update(conn: Connection, org: uuid.UUID, hid: uuid.UUID, name: str | None,
                 primary: uuid.UUID | None) -> None:
    await conn.execute(
        text("UPDATE crm.households SET name = :name, primary_donor_id = :primary, version = version + 1, "
             "updated_at = now() WHERE organization_id = :org AND id = :id"),
        {"org": org, "id": hid, "name": name, "primary": primary})


async def current_of(conn: Connection, org: uuid.UUID, donor_ids: list[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    """donor id -> the household they are in now."""
    rows = (await conn.execute(
        text("SELECT donor_id, household_id FROM crm.household_members WHERE organization_id = :org "
             "AND donor_id = ANY(CAST(:ids AS uuid[])) AND left_at IS NULL"),
        {"org": org, "ids": donor_ids})).mappings().all()
    return {r["donor_id"]: r["household_id"] for r in rows}


async def leave(conn: Connection, org: uuid.UUID, donor_id: uuid.UUID, reason: str) -> None:
    await conn.execute(
        text("UPDATE crm.household_members SET left_at = clock_timestamp(), leave_reason = :reason, "
             "updated_at = now() WHERE organization_id = :org AND donor_id = :d AND left_at IS NULL"),
        {"org": org, "d": donor_id, "reason": reason})


async def join(conn: Connection, org: uuid.UUID, hid: uuid.UUID, donor_id: uuid.UUID) -> None:
    await conn.execute(
        text("INSERT INTO crm.household_members (id, organization_id, household_id, donor_id) "
             "VALUES (:id, :org, :h, :d)"), {"id": uuid.uuid4(), "org": org, "h": hid, "d": donor_id})


async def members(conn: Connection, org: uuid.UUID, hids: list[uuid.UUID]) -> dict[uuid.UUID, list[Member]]:
    rows = (await conn.execute(
        text("SELECT m.household_id, m.donor_id, d.first_name, d.last_name, m.joined_at "
             "FROM crm.household_members m JOIN crm.donors d ON d.organization_id = m.organization_id "
             "AND d.id = m.donor_id WHERE m.organization_id = :org AND m.household_id = ANY(CAST(:ids AS uuid[])) "
             "AND m.left_at IS NULL ORDER BY m.household_id, m.joined_at, m.donor_id"),
        {"org": org, "ids": hids})).mappings().all()
    out: dict[uuid.UUID, list[Member]] = {}
    for r in rows:
        out.setdefault(r["household_id"], []).append(
            Member(r["donor_id"], r["first_name"], r["last_name"], r["joined_at"]))
    return out


# Per household and currency: the members' hard totals, and the other donors' gifts a member
# is soft-credited with (each gift once, its largest credit to a member, net of refunds).
_GIVING = text(
    """
    WITH m AS (
      SELECT household_id, donor_id FROM crm.household_members
      WHERE organization_id = :org AND household_id = ANY(CAST(:ids AS uuid[])) AND left_at IS NULL
    ), hard AS (
      SELECT m.household_id, g.currency, sum(g.lifetime_amount) AS amount
      FROM m JOIN crm.donor_giving g ON g.organization_id = :org AND g.donor_id = m.donor_id
      GROUP BY 1, 2
    ), credits AS (
      SELECT m.household_id, d.currency, s.donation_id, max(LEAST(s.amount, d.amount - d.refunded_amount)) AS amount
      FROM m JOIN crm.soft_credits s ON s.organization_id = :org AND s.donor_id = m.donor_id
      JOIN crm.donations d ON d.organization_id = :org AND d.id = s.donation_id AND d.refunded_amount < d.amount
      WHERE NOT EXISTS (SELECT 1 FROM m AS g WHERE g.household_id = m.household_id AND g.donor_id = d.donor_id)
      GROUP BY 1, 2, 3
    ), soft AS (
      SELECT household_id, currency, sum(amount) AS amount FROM credits GROUP BY 1, 2
    )
    SELECT COALESCE(h.household_id, s.household_id) AS household_id, COALESCE(h.currency, s.currency) AS currency,
      COALESCE(h.amount, 0) AS hard, COALESCE(s.amount, 0) AS soft
    FROM hard h FULL JOIN soft s ON s.household_id = h.household_id AND s.currency = h.currency
    ORDER BY 1, 2
    """
)


async def giving(conn: Connection, org: uuid.UUID, hids: list[uuid.UUID]) -> dict[uuid.UUID, list[Giving]]:
    rows = (await conn.execute(_GIVING, {"org": org, "ids": hids})).mappings().all()
    out: dict[uuid.UUID, list[Giving]] = {}
    for r in rows:
        out.setdefault(r["household_id"], []).append(Giving(r["currency"], r["hard"], r["soft"]))
    return out


async def memberships(conn: Connection, org: uuid.UUID, hid: uuid.UUID | None, donor_id: uuid.UUID | None,
                      after: list | None, limit: int) -> list[Membership]:
    rows = (await conn.execute(
        text("SELECT id, household_id, donor_id, joined_at, left_at, leave_reason FROM crm.household_members "
             "WHERE organization_id = :org AND (CAST(:h AS uuid) IS NULL OR household_id = :h) "
             "AND (CAST(:d AS uuid) IS NULL OR donor_id = :d) AND (CAST(:at AS timestamptz) IS NULL "
             "OR (joined_at, id) < (CAST(:at AS timestamptz), CAST(:aid AS uuid))) "
             "ORDER BY joined_at DESC, id DESC LIMIT :limit"),
        {"org": org, "h": hid, "d": donor_id, "at": after[0] if after else None,
         "aid": after[1] if after else None, "limit": limit})).mappings().all()
    return [Membership(**r) for r in rows]
