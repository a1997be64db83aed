"""crm's donation SQL: the gift, the donor's giving totals, refunds and corrections (with
their history), receipts, and pages of gifts.

Totals are net: a gift counts amount - refunded_amount, and a fully refunded gift
(refunded_amount = amount) counts in no total, count or first/last date."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_COLUMNS = (
    "id, organization_id, donor_id, project_id, amount, currency, date, payment_method, reference_number, "
    "notes, is_recurring, recurring_frequency, tax_deductible, created_at, updated_at, refunded_amount, "
    "next_expected_date, receipt_sent, receipt_sent_date, version"
)

# One statement: insert the gift only if the donor exists (not deleted) in this tenant, and
# fold it into the donor's per-currency totals. A repeated request_id inserts nothing.
_RECORD = text(
    f"""
    WITH donor AS (
      -- FOR SHARE: a concurrent merge or delete (which updates the row) finishes first, and
      -- a gift never lands on a donor that was deleted meanwhile.
      SELECT id FROM crm.donors WHERE organization_id = :org AND id = :donor_id AND deleted_at IS NULL FOR SHARE
    ), gift AS (
      INSERT INTO crm.donations (id, organization_id, donor_id, project_id, amount, currency, date,
        payment_method, reference_number, notes, is_recurring, recurring_frequency, tax_deductible, request_id,
        next_expected_date)
      SELECT :id, :org, donor.id, :project_id, :amount, :currency, :date, :payment_method, :reference_number,
        :notes, :is_recurring, :recurring_frequency, :tax_deductible, :request_id, :next_expected_date
      FROM donor
      ON CONFLICT (organization_id, request_id) WHERE request_id IS NOT NULL DO NOTHING
      RETURNING {_COLUMNS}
    ), totals AS (
      INSERT INTO crm.donor_giving AS g (organization_id, donor_id, currency, lifetime_amount, donation_count,
        first_gift_date, last_gift_date)
      SELECT organization_id, donor_id, currency, amount, 1, date, date FROM gift
      ON CONFLICT (donor_id, currency) DO UPDATE SET
        lifetime_amount = g.lifetime_amount + EXCLUDED.lifetime_amount,
        donation_count = g.donation_count + 1,
        first_gift_date = LEAST(g.first_gift_date, EXCLUDED.first_gift_date),
        last_gift_date = GREATEST(g.last_gift_date, EXCLUDED.last_gift_date),
        updated_at = now()
    )
    SELECT {_COLUMNS} FROM gift
    """
)


async def record(conn: AsyncConnection, org: uuid.UUID, donation_id: uuid.UUID, values: dict[str, Any],
                 request_id: str | None) -> dict[str, Any] | None:
    """The new donation, or None when the donor is missing or request_id was used already."""
    row = (await conn.execute(
        _RECORD, {"org": org, "id": donation_id, "request_id": request_id, **values}
    )).mappings().first()
    return dict(row) if row else None


async def by_request_id(conn: AsyncConnection, org: uuid.UUID, request_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(
        text(f"SELECT {_COLUMNS} FROM crm.donations WHERE organization_id = :org AND request_id = :rid"),
        {"org": org, "rid": request_id},
    )).mappings().first()
    return dict(row) if row else None


async def page(conn: AsyncConnection, org: uuid.UUID, *, donor_id: uuid.UUID | None, after: list | None,
               limit: int, project_id: uuid.UUID | None = None, recurring_only: bool = False,
               start: date | None = None, end: date | None = None) -> list[dict[str, Any]]:
    """Newest first, keyset on (date, id)."""
    where = ["organization_id = :org"]
    params: dict[str, Any] = {"org": org, "limit": limit}
    if donor_id:
        where.append("donor_id = :donor")
        params["donor"] = donor_id
    if project_id:
        where.append("project_id = :project")
        params["project"] = project_id
    if recurring_only:
        where.append("is_recurring")
    if start:
        where.append("date >= :start")
        params["start"] = start
    if end:
        where.append("date <= :end")
        params["end"] = end
    if after is not None:
        where.append("(date, id) < (:after_date, :after_id)")
        params["after_date"], params["after_id"] = after
    sql = (f"SELECT {_COLUMNS} FROM crm.donations WHERE {' AND '.join(where)} "
           "ORDER BY date DESC, id DESC LIMIT :limit")
    return [dict(r) for r in (await conn.execute(text(sql), params)).mappings().all()]


async def get(conn: AsyncConnection, org: uuid.UUID, donation_id: uuid.UUID) -> dict[str, Any] | None:
    row = (await conn.execute(
        text(f"SELECT {_COLUMNS} FROM crm.donations WHERE organization_id = :org AND id = :id"),
        {"org": org, "id": donation_id},
    )).mappings().first()
    return dict(row) if row else None


async def donor_of(conn: AsyncConnection, org: uuid.UUID, donation_id: uuid.UUID) -> uuid.UUID | None:
    """The gift's donor, unlocked (the caller locks the donor, then the gift, and checks again)."""
    return (await conn.execute(
        text("SELECT donor_id FROM crm.donations WHERE organization_id = :org AND id = :id"),
        {"org": org, "id": donation_id},
    )).scalar()


async def lock_donors(conn: AsyncConnection, org: uuid.UUID, donor_ids: list[uuid.UUID]) -> dict[uuid.UUID, bool]:
    """Lock donors (in id order, so two writers never deadlock) against a concurrent gift,
    merge or correction touching their totals: RecordDonation's FOR SHARE waits for this
    transaction. Returns donor id -> live (not deleted) for the donors that exist."""
    rows = (await conn.execute(
        text("SELECT id, deleted_at IS NULL AS live FROM crm.donors WHERE organization_id = :org "
             "AND id = ANY(CAST(:ids AS uuid[])) ORDER BY id FOR NO KEY UPDATE"),
        {"org": org, "ids": sorted(set(donor_ids))},
    )).mappings().all()
    return {r["id"]: r["live"] for r in rows}


async def get_for_update(conn: AsyncConnection, org: uuid.UUID, donation_id: uuid.UUID) -> dict[str, Any] | None:
    row = (await conn.execute(
        text(f"SELECT {_COLUMNS} FROM crm.donations WHERE organization_id = :org AND id = :id FOR UPDATE"),
        {"org": org, "id": donation_id},
    )).mappings().first()
    return dict(row) if row else None


CORRECTABLE = ("donor_id", "project_id", "amount", "currency", "date", "payment_method", "reference_number", "notes",
               "is_recurring", "recurring_frequency", "tax_deductible", "next_expected_date")


async def update(conn: AsyncConnection, org: uuid.UUID, donation_id: uuid.UUID, values: dict[str, Any]) -> dict:
    sets = ", ".join(f"{c} = :{c}" for c in CORRECTABLE)
    row = (await conn.execute(
        text(f"UPDATE crm.donations SET {sets}, version = version + 1, updated_at = now() "
             f"WHERE organization_id = :org AND id = :id RETURNING {_COLUMNS}"),
        {"org": org, "id": donation_id, **{c: values[c] for c in CORRECTABLE}},
    )).mappings().one()
    return dict(row)


# Every (donor, currency) given is summed again from its gifts, net of refunds, in one
# statement: the row is replaced, or deleted when no gift that counts remains.
_RECOMPUTE = text(
    """
    WITH keys AS (
      SELECT DISTINCT k.donor_id, k.currency
      FROM unnest(CAST(:donors AS uuid[]), CAST(:currencies AS text[])) AS k(donor_id, currency)
    ), agg AS (
      SELECT k.donor_id, k.currency, COALESCE(sum(d.amount - d.refunded_amount), 0) AS total, count(d.id) AS n,
             min(d.date) AS first_date, max(d.date) AS last_date
      FROM keys k
      LEFT JOIN crm.donations d ON d.organization_id = :org AND d.donor_id = k.donor_id
        AND d.currency = k.currency AND d.refunded_amount < d.amount
      GROUP BY k.donor_id, k.currency
    ), gone AS (
      DELETE FROM crm.donor_giving g USING agg
      WHERE g.organization_id = :org AND g.donor_id = agg.donor_id AND g.currency = agg.currency AND agg.n = 0
    )
    INSERT INTO crm.donor_giving AS g (organization_id, donor_id, currency, lifetime_amount, donation_count,
      first_gift_date, last_gift_date)
    SELECT :org, donor_id, currency, total, n, first_date, last_date FROM agg WHERE n > 0
    ON CONFLICT (donor_id, currency) DO UPDATE SET
      lifetime_amount = EXCLUDED.lifetime_amount, donation_count = EXCLUDED.donation_count,
      first_gift_date = EXCLUDED.first_gift_date, last_gift_date = EXCLUDED.last_gift_date, updated_at = now()
    """
)


async def recompute_giving(conn: AsyncConnection, org: uuid.UUID, keys: list[tuple[uuid.UUID, str]]) -> None:
    """The caller holds the donors' locks (lock_donors), so the sums see every committed gift."""
    await conn.execute(_RECOMPUTE, {"org": org, "donors": [k[0] for k in keys], "currencies": [k[1] for k in keys]})


_REFUND_COLUMNS = "id, donation_id, amount, currency, reason, refund_date, created_at"


async def insert_refund(conn: AsyncConnection, org: uuid.UUID, refund_id: uuid.UUID, donation_id: uuid.UUID,
                        amount: Decimal, currency: str, reason: str, refund_date: date, request_id: str | None,
                        actor: str | None) -> dict[str, Any] | None:
    """The refund row, or None when request_id was used already."""
    row = (await conn.execute(
        text("INSERT INTO crm.donation_refunds (id, organization_id, donation_id, amount, currency, reason, "
             "refund_date, request_id, created_by) VALUES (:id, :org, :donation, :amount, :currency, :reason, "
             ":refund_date, :rid, :actor) ON CONFLICT (organization_id, request_id) WHERE request_id IS NOT NULL "
             f"DO NOTHING RETURNING {_REFUND_COLUMNS}"),
        {"id": refund_id, "org": org, "donation": donation_id, "amount": amount, "currency": currency,
         "reason": reason, "refund_date": refund_date, "rid": request_id, "actor": actor},
    )).mappings().first()
    return dict(row) if row else None


async def refund_by_request_id(conn: AsyncConnection, org: uuid.UUID, request_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(
        text(f"SELECT {_REFUND_COLUMNS} FROM crm.donation_refunds WHERE organization_id = :org AND request_id = :rid"),
        {"org": org, "rid": request_id},
    )).mappings().first()
    return dict(row) if row else None


async def add_refunded(conn: AsyncConnection, org: uuid.UUID, donation_id: uuid.UUID, amount: Decimal) -> dict:
    row = (await conn.execute(
        text("UPDATE crm.donations SET refunded_amount = refunded_amount + :amount, version = version + 1, "
             f"updated_at = now() WHERE organization_id = :org AND id = :id RETURNING {_COLUMNS}"),
        {"org": org, "id": donation_id, "amount": amount},
    )).mappings().one()
    return dict(row)


async def refunds(conn: AsyncConnection, org: uuid.UUID, donation_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = (await conn.execute(
        text(f"SELECT {_REFUND_COLUMNS} FROM crm.donation_refunds WHERE organization_id = :org "
             "AND donation_id = :id ORDER BY created_at, id"),
        {"org": org, "id": donation_id},
    )).mappings().all()
    return [dict(r) for r in rows]


def _json(values: dict[str, Any]) -> str:
    return json.dumps({k: (str(v) if isinstance(v, (Decimal, date, datetime, uuid.UUID)) else v)
                       for k, v in values.items()})


async def insert_revision(conn: AsyncConnection, org: uuid.UUID, donation_id: uuid.UUID, changed: list[str],
                          before: dict[str, Any], after: dict[str, Any], reason: str, actor: str | None) -> int:
    """The next revision number of the gift (the caller holds the gift's lock)."""
    return (await conn.execute(
        text("INSERT INTO crm.donation_revisions (organization_id, donation_id, revision, changed_fields, before, "
             "after, reason, actor_id) SELECT :org, :id, COALESCE(max(revision), 0) + 1, CAST(:changed AS text[]), "
             "CAST(:before AS jsonb), CAST(:after AS jsonb), :reason, :actor FROM crm.donation_revisions "
             "WHERE organization_id = :org AND donation_id = :id RETURNING revision"),
        {"org": org, "id": donation_id, "changed": changed, "before": _json(before), "after": _json(after),
         "reason": reason, "actor": actor},
    )).scalar()


async def revisions_page(conn: AsyncConnection, org: uuid.UUID, donation_id: uuid.UUID, after: int | None,
                         limit: int) -> list[dict[str, Any]]:
    rows = (await conn.execute(
        text("SELECT donation_id, revision, changed_fields, CAST(before AS text) AS before, "
             "CAST(after AS text) AS after, reason, actor_id, created_at FROM crm.donation_revisions "
             "WHERE organization_id = :org AND donation_id = :id AND revision > :after "
             "ORDER BY revision LIMIT :limit"),
        {"org": org, "id": donation_id, "after": after or 0, "limit": limit},
    )).mappings().all()
    return [dict(r) for r in rows]


async def lock_many(conn: AsyncConnection, org: uuid.UUID, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Lock the gifts (id order) and return those of this tenant."""
    rows = (await conn.execute(
        text("SELECT id FROM crm.donations WHERE organization_id = :org AND id = ANY(CAST(:ids AS uuid[])) "
             "ORDER BY id FOR UPDATE"),
        {"org": org, "ids": sorted(set(ids))},
    )).scalars().all()
    return set(rows)


async def mark_receipts(conn: AsyncConnection, org: uuid.UUID, ids: list[uuid.UUID],
                        send_time: datetime) -> tuple[list[dict[str, Any]], list[uuid.UUID]]:
    """Mark the gifts not marked yet; returns every named gift as it is now, and the ids marked."""
    marked = (await conn.execute(
        text("UPDATE crm.donations SET receipt_sent = true, receipt_sent_date = :t, version = version + 1, "
             "updated_at = now() WHERE organization_id = :org AND id = ANY(CAST(:ids AS uuid[])) "
             "AND NOT receipt_sent RETURNING id"),
        {"org": org, "ids": ids, "t": send_time},
    )).scalars().all()
    rows = (await conn.execute(
        text(f"SELECT {_COLUMNS} FROM crm.donations WHERE organization_id = :org "
             "AND id = ANY(CAST(:ids AS uuid[])) ORDER BY date DESC, id DESC"),
        {"org": org, "ids": ids},
    )).mappings().all()
    return [dict(r) for r in rows], list(marked)


async def donor_exists(conn: AsyncConnection, org: uuid.UUID, donor_id: uuid.UUID) -> bool:
    return bool((await conn.execute(
        text("SELECT 1 FROM crm.donors WHERE organization_id = :org AND id = :id"),
        {"org": org, "id": donor_id},
    )).scalar())


# A donor's tax receipt for a year: deductible gifts that still count, net of refunds, per
# currency; amounts travel as text so they stay exact.
_RECEIPT = text(
    """
    SELECT currency, CAST(sum(amount - refunded_amount) AS text) AS total, count(*) AS gift_count,
           json_agg(json_build_object('id', id, 'date', date, 'amount', CAST(amount - refunded_amount AS text),
                                      'reference_number', reference_number, 'receipt_sent', receipt_sent)
                    ORDER BY date, id) AS gifts
    FROM crm.donations
    WHERE organization_id = :org AND donor_id = :donor AND tax_deductible AND refunded_amount < amount
      AND date >= :start AND date < :end
    GROUP BY currency ORDER BY currency
    """
)


async def receipt_summary(conn: AsyncConnection, org: uuid.UUID, donor_id: uuid.UUID, year: int) -> list[dict]:
    rows = (await conn.execute(
        _RECEIPT, {"org": org, "donor": donor_id, "start": date(year, 1, 1), "end": date(year + 1, 1, 1)},
    )).mappings().all()
    out = []
    for r in rows:
        gifts = r["gifts"] if not isinstance(r["gifts"], str) else json.loads(r["gifts"])
        out.append({"currency": r["currency"], "total": Decimal(r["total"]), "gift_count": r["gift_count"],
                    "gifts": [{**g, "amount": Decimal(g["amount"]), "date": date.fromisoformat(g["date"])}
                              for g in gifts]})
    return out
