"""crm's soft credit SQL: the credits of a gift and the donors' soft giving totals
(crm.donor_soft_giving), kept in the writing transaction.

A new gift's credits fold into the totals incrementally (the donors are held FOR SHARE, as
RecordDonation holds its donor); every other change recomputes the (donor, currency) keys it
touches from the credits and their gifts, under the donors' FOR NO KEY UPDATE locks, so the
sums see every committed credit and no concurrent write slips between them."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import text

from chassis.db import Connection
from services.crm.domain.soft_credits import SoftCreditSpec


class SoftCredit(NamedTuple):
    id: uuid.UUID
    donation_id: uuid.UUID
    donor_id: uuid.UUID
    role: str
    amount: Decimal


_COLUMNS = "id, donation_id, donor_id, role, amount"


async def share_live_donors(conn: Connection, org: uuid.UUID, donor_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Hold live donors FOR SHARE (in id order) while a gift's credits are added: a merge, a
    delete or a recompute of their totals waits for this transaction. Returns the live ones."""
    rows = (await conn.execute(
        text("SELECT id FROM crm.donors WHERE organization_id = :org AND id = ANY(CAST(:ids AS uuid[])) "
             "AND deleted_at IS NULL ORDER BY id FOR SHARE"),
        {"org": org, "ids": sorted(set(donor_ids))},
    )).scalars().all()
    return set(rows)


# The new gift's credits, folded into each donor's soft totals in the same statement.
_INSERT_NEW = text(
    """
    WITH ins AS (
      INSERT INTO crm.soft_credits (id, organization_id, donation_id, donor_id, role, amount)
      SELECT t.id, :org, :gift, t.donor_id, t.role, t.amount
      FROM unnest(CAST(:ids AS uuid[]), CAST(:donors AS uuid[]), CAST(:roles AS text[]),
                  CAST(:amounts AS numeric[])) AS t(id, donor_id, role, amount)
      RETURNING id, donation_id, donor_id, role, amount
    ), totals AS (
      INSERT INTO crm.donor_soft_giving AS g (organization_id, donor_id, currency, soft_amount, soft_count,
        first_gift_date, last_gift_date)
      SELECT :org, donor_id, :currency, amount, 1, CAST(:day AS date), CAST(:day AS date) FROM ins
      ON CONFLICT (donor_id, currency) DO UPDATE SET
        soft_amount = g.soft_amount + EXCLUDED.soft_amount, soft_count = g.soft_count + 1,
        first_gift_date = LEAST(g.first_gift_date, EXCLUDED.first_gift_date),
        last_gift_date = GREATEST(g.last_gift_date, EXCLUDED.last_gift_date), updated_at = now()
    )
    SELECT id, donation_id, donor_id, role, amount FROM ins
    """
)


async def add_to_new_gift(conn: Connection, org: uuid.UUID, gift_id: uuid.UUID, currency: str, day: date,
                          specs: list[SoftCreditSpec]) -> list[SoftCredit]:
    """A just-recorded gift's credits (the caller holds the donors FOR SHARE)."""
    ids = [uuid.uuid4() for _ in specs]
    rows = (await conn.execute(_INSERT_NEW, {
        "org": org, "gift": gift_id, "currency": currency, "day": day, "ids": ids,
        "donors": [s.donor_id for s in specs], "roles": [s.role for s in specs],
        "amounts": [s.amount for s in specs],
    })).mappings().all()
    order = {i: n for n, i in enumerate(ids)}
    return sorted((SoftCredit(**r) for r in rows), key=lambda c: order[c.id])


async def for_gifts(conn: Connection, org: uuid.UUID, gift_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[SoftCredit]]:
    if not gift_ids:
        return {}
    rows = (await conn.execute(
        text(f"SELECT {_COLUMNS} FROM crm.soft_credits WHERE organization_id = :org "
             "AND donation_id = ANY(CAST(:ids AS uuid[])) ORDER BY donation_id, created_at, id"),
        {"org": org, "ids": gift_ids},
    )).mappings().all()
    out: dict[uuid.UUID, list[SoftCredit]] = {}
    for r in rows:
        out.setdefault(r["donation_id"], []).append(SoftCredit(**r))
    return out


async def gift_parties(conn: Connection, org: uuid.UUID, gift_id: uuid.UUID,
                       ) -> tuple[uuid.UUID | None, list[uuid.UUID]]:
    """The gift's donor and its soft-credited donors, unlocked (the caller locks, then checks)."""
    row = (await conn.execute(
        text("SELECT d.donor_id, ARRAY(SELECT s.donor_id FROM crm.soft_credits s WHERE s.donation_id = d.id "
             "AND s.organization_id = d.organization_id) AS soft FROM crm.donations d "
             "WHERE d.organization_id = :org AND d.id = :id"),
        {"org": org, "id": gift_id},
    )).mappings().first()
    return (row["donor_id"], list(row["soft"])) if row else (None, [])


async def remove(conn: Connection, org: uuid.UUID, credit_ids: list[uuid.UUID]) -> None:
    if credit_ids:
        await conn.execute(text("DELETE FROM crm.soft_credits WHERE organization_id = :org "
                                "AND id = ANY(CAST(:ids AS uuid[]))"), {"org": org, "ids": credit_ids})


async def upsert(conn: Connection, org: uuid.UUID, gift_id: uuid.UUID, specs: list[SoftCreditSpec]) -> None:
    """Insert the credits, or set the role and amount of the donor's credit the gift has."""
    if specs:
        await conn.execute(text(
            "INSERT INTO crm.soft_credits (id, organization_id, donation_id, donor_id, role, amount) "
            "SELECT gen_random_uuid(), :org, :gift, t.donor_id, t.role, t.amount "
            "FROM unnest(CAST(:donors AS uuid[]), CAST(:roles AS text[]), CAST(:amounts AS numeric[])) "
            "AS t(donor_id, role, amount) ON CONFLICT (donation_id, donor_id) DO UPDATE SET "
            "role = EXCLUDED.role, amount = EXCLUDED.amount, updated_at = now()"),
            {"org": org, "gift": gift_id, "donors": [s.donor_id for s in specs], "roles": [s.role for s in specs],
             "amounts": [s.amount for s in specs]})


async def drop_own_donor(conn: Connection, org: uuid.UUID, gift_id: uuid.UUID) -> list[uuid.UUID]:
    """The gift's donor never soft-credits their own gift: such a credit (left by moving the
    gift to a donor it soft-credited) goes. Returns the donors whose credit went."""
    return list((await conn.execute(
        text("DELETE FROM crm.soft_credits s USING crm.donations d WHERE s.organization_id = :org "
             "AND s.donation_id = :id AND d.organization_id = :org AND d.id = s.donation_id "
             "AND s.donor_id = d.donor_id RETURNING s.donor_id"),
        {"org": org, "id": gift_id},
    )).scalars().all())


async def largest(conn: Connection, org: uuid.UUID, gift_id: uuid.UUID) -> Decimal | None:
    return (await conn.execute(
        text("SELECT max(amount) FROM crm.soft_credits WHERE organization_id = :org AND donation_id = :id"),
        {"org": org, "id": gift_id},
    )).scalar()


# Every (donor, currency) named is summed again from its credits and their gifts, in one
# statement: the row is replaced, or deleted when no credit that counts remains.
SOFT_SUMS = (
    "SELECT s.donor_id, d.currency, sum(LEAST(s.amount, d.amount - d.refunded_amount)) AS total, "
    "count(*) AS n, min(d.date) AS first_date, max(d.date) AS last_date "
    "FROM crm.soft_credits s JOIN crm.donations d ON d.organization_id = s.organization_id "
    "AND d.id = s.donation_id AND d.refunded_amount < d.amount WHERE s.organization_id = :org"
)
_RECOMPUTE = text(
    f"""
    WITH keys AS (
      SELECT DISTINCT k.donor_id, k.currency
      FROM unnest(CAST(:donors AS uuid[]), CAST(:currencies AS text[])) AS k(donor_id, currency)
    ), sums AS (
      {SOFT_SUMS} AND (s.donor_id, d.currency) IN (SELECT donor_id, currency FROM keys)
      GROUP BY s.donor_id, d.currency
    ), gone AS (
      DELETE FROM crm.donor_soft_giving g USING keys
      WHERE g.organization_id = :org AND g.donor_id = keys.donor_id AND g.currency = keys.currency
        AND NOT EXISTS (SELECT 1 FROM sums WHERE sums.donor_id = keys.donor_id AND sums.currency = keys.currency)
    )
    INSERT INTO crm.donor_soft_giving AS g (organization_id, donor_id, currency, soft_amount, soft_count,
      first_gift_date, last_gift_date)
    SELECT :org, donor_id, currency, total, n, first_date, last_date FROM sums
    ON CONFLICT (donor_id, currency) DO UPDATE SET
      soft_amount = EXCLUDED.soft_amount, soft_count = EXCLUDED.soft_count,
      first_gift_date = EXCLUDED.first_gift_date, last_gift_date = EXCLUDED.last_gift_date, updated_at = now()
    """
)


async def recompute(conn: Connection, org: uuid.UUID, keys: list[tuple[uuid.UUID, str]]) -> None:
    """The caller holds the donors' locks (FOR NO KEY UPDATE)."""
    if keys:
        await conn.execute(_RECOMPUTE, {"org": org, "donors": [k[0] for k in keys],
                                        "currencies": [k[1] for k in keys]})


async def merge(conn: Connection, org: uuid.UUID, survivor: uuid.UUID, merged: uuid.UUID) -> None:
    """The merged donor's credits become the survivor's (on a gift both were credited with, the
    larger credit stays); a credit on the survivor's own gifts (the merged donor's, moved before
    this) goes; both donors' soft totals are summed again. The caller holds both donors' locks."""
    params = {"org": org, "s": survivor, "m": merged}
    await conn.execute(text(
        "UPDATE crm.soft_credits s SET amount = GREATEST(s.amount, m.amount), updated_at = now() "
        "FROM crm.soft_credits m WHERE s.organization_id = :org AND m.organization_id = :org "
        "AND s.donor_id = :s AND m.donor_id = :m AND m.donation_id = s.donation_id"), params)
    await conn.execute(text(
        "DELETE FROM crm.soft_credits m WHERE m.organization_id = :org AND m.donor_id = :m AND EXISTS "
        "(SELECT 1 FROM crm.soft_credits s WHERE s.organization_id = :org AND s.donor_id = :s "
        "AND s.donation_id = m.donation_id)"), params)
    await conn.execute(text(
        "UPDATE crm.soft_credits SET donor_id = :s, updated_at = now() WHERE organization_id = :org "
        "AND donor_id = :m"), params)
    await conn.execute(text(
        "DELETE FROM crm.soft_credits s USING crm.donations d WHERE s.organization_id = :org AND s.donor_id = :s "
        "AND d.organization_id = :org AND d.id = s.donation_id AND d.donor_id = :s"), params)
    await conn.execute(text(
        "DELETE FROM crm.donor_soft_giving WHERE organization_id = :org AND donor_id IN (:s, :m)"), params)
    await conn.execute(text(
        "INSERT INTO crm.donor_soft_giving (organization_id, donor_id, currency, soft_amount, soft_count, "
        f"first_gift_date, last_gift_date) SELECT :org, donor_id, currency, total, n, first_date, last_date "
        f"FROM ({SOFT_SUMS} AND s.donor_id = :s GROUP BY s.donor_id, d.currency) AS sums"), params)
