"""crm's donation SQL: the gift, the donor's giving totals, refunds and corrections (with
their history), and pages of gifts (receipts: store.receipts).

Totals are net: a gift counts amount - refunded_amount, and a fully refunded gift
(refunded_amount = amount) counts in no total, count or first/last date."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import text

from chassis import sql
from chassis.db import Connection
from chassis.sql import Where
from services.crm.domain import donations as rules


@dataclass(slots=True)
class Donation:
    """A stored gift; `refunded_amount` of it has been refunded."""

    id: uuid.UUID
    organization_id: uuid.UUID
    donor_id: uuid.UUID
    project_id: uuid.UUID | None
    amount: Decimal
    currency: str
    date: date
    payment_method: str | None
    reference_number: str | None
    notes: str | None
    is_recurring: bool
    recurring_frequency: str | None
    tax_deductible: bool
    created_at: datetime
    updated_at: datetime
    refunded_amount: Decimal
    next_expected_date: date | None
    receipt_sent: bool
    receipt_sent_date: datetime | None
    version: int
    pledge_id: uuid.UUID | None
    # Read where a use case asks for them (handlers.soft_credits.attach), not by DONATION_COLUMNS.
    soft_credits: list = field(default_factory=list)
    allocations: list = field(default_factory=list)  # handlers.funds.attach
    receipt_number: str | None = None  # handlers.tax_receipts.attach
    tribute: Any = None  # handlers.gift_extras.attach (store.tributes.Tribute)

    @property
    def status(self) -> str:
        """recorded, partially_refunded or refunded."""
        return rules.status(self.amount, self.refunded_amount)


class Refund(NamedTuple):
    id: uuid.UUID
    donation_id: uuid.UUID
    amount: Decimal
    currency: str
    reason: str
    refund_date: date
    created_at: datetime


class Revision(NamedTuple):
    """One correction of a gift: the fields changed, their values before and after (JSON text)."""

    donation_id: uuid.UUID
    revision: int
    changed_fields: list[str]
    before: str
    after: str
    reason: str
    actor_id: str | None
    created_at: datetime


_ATTACHED = ("soft_credits", "allocations", "receipt_number", "tribute")
DONATION_COLUMNS = (
    "id, organization_id, donor_id, project_id, amount, currency, date, payment_method, reference_number, "
    "notes, is_recurring, recurring_frequency, tax_deductible, created_at, updated_at, refunded_amount, "
    "next_expected_date, receipt_sent, receipt_sent_date, version, pledge_id"
)# Built by position: DONATION_COLUMNS are a Donation's fields, in order.
assert DONATION_COLUMNS.split(", ") == [f.name for f in fields(Donation)
                                        if f.name not in _ATTACHED]


def _donation(row: Any) -> Donation:
    return Donation(*row)


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
        next_expected_date, pledge_id)
      SELECT :id, :org, donor.id, :project_id, :amount, :currency, :date, :payment_method, :reference_number,
        :notes, :is_recurring, :recurring_frequency, :tax_deductible, :request_id, :next_expected_date, :pledge_id
      FROM donor
      ON CONFLICT (organization_id, request_id) WHERE request_id IS NOT NULL DO NOTHING
      RETURNING {DONATION_COLUMNS}
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
    SELECT {DONATION_COLUMNS} FROM gift
    """
)


async def record(conn: Connection, org: uuid.UUID, donation_id: uuid.UUID, values: dict[str, Any],
                 request_id: str | None) -> Donation | None:
    """The new donation, or None when the donor is missing or request_id was used already."""
    row = (await conn.execute(
        _RECORD, {"org": org, "id": donation_id, "request_id": request_id, **values}
    )).mappings().first()
    return Donation(*row) if row else None


async def by_request_id(conn: Connection, org: uuid.UUID, request_id: str) -> Donation | None:
    return await sql.first(conn, f"SELECT {DONATION_COLUMNS} FROM crm.donations "
                           "WHERE organization_id = :org AND request_id = :rid", {"org": org, "rid": request_id},
                           _donation)


async def page(conn: Connection, org: uuid.UUID, *, donor_id: uuid.UUID | None, after: list | None,
               limit: int, project_id: uuid.UUID | None = None, recurring_only: bool = False,
               start: date | None = None, end: date | None = None) -> list[Donation]:
    """Newest first, keyset on (date, id)."""
    where = Where("organization_id = :org", org=org, limit=limit)
    where.filter("donor_id = :donor", donor=donor_id).filter("project_id = :project", project=project_id)
    if recurring_only:
        where.add("is_recurring")
    where.filter("date >= :start", start=start).filter("date <= :end", end=end).keyset("(date, id) <", after)
    return await sql.every(conn, f"SELECT {DONATION_COLUMNS} FROM crm.donations WHERE {where} "
                           "ORDER BY date DESC, id DESC LIMIT :limit", where.params, _donation)


async def get(conn: Connection, org: uuid.UUID, donation_id: uuid.UUID) -> Donation | None:
    return await sql.first(conn, f"SELECT {DONATION_COLUMNS} FROM crm.donations WHERE organization_id = :org "
                           "AND id = :id", {"org": org, "id": donation_id}, _donation)


async def donor_of(conn: Connection, org: uuid.UUID, donation_id: uuid.UUID) -> uuid.UUID | None:
    """The gift's donor, unlocked (the caller locks the donor, then the gift, and checks again)."""
    return (await conn.execute(
        text("SELECT donor_id FROM crm.donations WHERE organization_id = :org AND id = :id"),
        {"org": org, "id": donation_id},
    )).scalar()


async def lock_donors(conn: Connection, org: uuid.UUID, donor_ids: list[uuid.UUID]) -> dict[uuid.UUID, bool]:
    """Lock donors (in id order, so two writers never deadlock) against a concurrent gift,
    merge or correction touching their totals: RecordDonation's FOR SHARE waits for this
    transaction. Returns donor id -> live (not deleted) for the donors that exist."""
    rows = (await conn.execute(
        text("SELECT id, deleted_at IS NULL AS live FROM crm.donors WHERE organization_id = :org "
             "AND id = ANY(CAST(:ids AS uuid[])) ORDER BY id FOR NO KEY UPDATE"),
        {"org": org, "ids": sorted(set(donor_ids))},
    )).mappings().all()
    return {r["id"]: r["live"] for r in rows}


async def touch(conn: Connection, org: uuid.UUID, donation_id: uuid.UUID) -> Donation:
    """A new version of the gift (its etag changes) after a change kept beside it (soft credits)."""
    row = (await conn.execute(
        text("UPDATE crm.donations SET version = version + 1, updated_at = now() "
             f"WHERE organization_id = :org AND id = :id RETURNING {DONATION_COLUMNS}"),
        {"org": org, "id": donation_id},
    )).mappings().one()
    return Donation(*row)


async def get_for_update(conn: Connection, org: uuid.UUID, donation_id: uuid.UUID) -> Donation | None:
    row = (await conn.execute(
        text(f"SELECT {DONATION_COLUMNS} FROM crm.donations WHERE organization_id = :org AND id = :id FOR UPDATE"),
        {"org": org, "id": donation_id},
    )).mappings().first()
    return Donation(*row) if row else None


CORRECTABLE = ("donor_id", "project_id", "amount", "currency", "date", "payment_method", "reference_number", "notes",
               "is_recurring", "recurring_frequency", "tax_deductible", "next_expected_date")


async def update(conn: Connection, org: uuid.UUID, donation_id: uuid.UUID, values: dict[str, Any]) -> Donation:
    sets = ", ".join(f"{c} = :{c}" for c in CORRECTABLE)
    row = (await conn.execute(
        text(f"UPDATE crm.donations SET {sets}, version = version + 1, updated_at = now() "
             f"WHERE organization_id = :org AND id = :id RETURNING {DONATION_COLUMNS}"),
        {"org": org, "id": donation_id, **{c: values[c] for c in CORRECTABLE}},
    )).mappings().one()
    return Donation(*row)


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


async def recompute_giving(conn: Connection, org: uuid.UUID, keys: list[tuple[uuid.UUID, str]]) -> None:
    """The caller holds the donors' locks (lock_donors), so the sums see every committed gift."""
    await conn.execute(_RECOMPUTE, {"org": org, "donors": [k[0] for k in keys], "currencies": [k[1] for k in keys]})


_REFUND_COLUMNS = "id, donation_id, amount, currency, reason, refund_date, created_at"


async def insert_refund(conn: Connection, org: uuid.UUID, refund_id: uuid.UUID, donation_id: uuid.UUID,
                        amount: Decimal, currency: str, reason: str, refund_date: date, request_id: str | None,
                        actor: str | None) -> Refund | None:
    """The refund row, or None when request_id was used already."""
    row = (await conn.execute(
        text("INSERT INTO crm.donation_refunds (id, organization_id, donation_id, amount, currency, reason, "
             "refund_date, request_id, created_by) VALUES (:id, :org, :donation, :amount, :currency, :reason, "
             ":refund_date, :rid, :actor) ON CONFLICT (organization_id, request_id) WHERE request_id IS NOT NULL "
             f"DO NOTHING RETURNING {_REFUND_COLUMNS}"),
        {"id": refund_id, "org": org, "donation": donation_id, "amount": amount, "currency": currency,
         "reason": reason, "refund_date": refund_date, "rid": request_id, "actor": actor},
    )).mappings().first()
    return Refund(**row) if row else None


async def refund_by_request_id(conn: Connection, org: uuid.UUID, request_id: str) -> Refund | None:
    row = (await conn.execute(
        text(f"SELECT {_REFUND_COLUMNS} FROM crm.donation_refunds WHERE organization_id = :org AND request_id = :rid"),
        {"org": org, "rid": request_id},
    )).mappings().first()
    return Refund(**row) if row else None


async def add_refunded(conn: Connection, org: uuid.UUID, donation_id: uuid.UUID, amount: Decimal) -> Donation:
    row = (await conn.execute(
        text("UPDATE crm.donations SET refunded_amount = refunded_amount + :amount, version = version + 1, "
             f"updated_at = now() WHERE organization_id = :org AND id = :id RETURNING {DONATION_COLUMNS}"),
        {"org": org, "id": donation_id, "amount": amount},
    )).mappings().one()
    return Donation(*row)


async def refunds(conn: Connection, org: uuid.UUID, donation_id: uuid.UUID) -> list[Refund]:
    rows = (await conn.execute(
        text(f"SELECT {_REFUND_COLUMNS} FROM crm.donation_refunds WHERE organization_id = :org "
             "AND donation_id = :id ORDER BY created_at, id"),
        {"org": org, "id": donation_id},
    )).mappings().all()
    return [Refund(**r) for r in rows]


def _json(values: dict[str, Any]) -> str:
    return json.dumps({k: (str(v) if isinstance(v, (Decimal, date, datetime, uuid.UUID)) else v)
                       for k, v in values.items()})


async def insert_revision(conn: Connection, org: uuid.UUID, donation_id: uuid.UUID, changed: list[str],
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


async def revisions_page(conn: Connection, org: uuid.UUID, donation_id: uuid.UUID, after: int | None,
                         limit: int) -> list[Revision]:
    rows = (await conn.execute(
        text("SELECT donation_id, revision, changed_fields, CAST(before AS text) AS before, "
             "CAST(after AS text) AS after, reason, actor_id, created_at FROM crm.donation_revisions "
             "WHERE organization_id = :org AND donation_id = :id AND revision > :after "
             "ORDER BY revision LIMIT :limit"),
        {"org": org, "id": donation_id, "after": after or 0, "limit": limit},
    )).mappings().all()
    return [Revision(**r) for r in rows]


async def thank_you_contact(conn: Connection, org: uuid.UUID, donor_id: uuid.UUID) -> dict[str, Any]:
    """The donor's address and names, and how many gifts they have made (this one included), for
    the crm.donation.recorded event comms thanks from."""
    row = await sql.first(
        conn, "SELECT d.email, d.first_name, d.last_name, (SELECT COALESCE(sum(g.donation_count), 0) "
              "FROM crm.donor_giving g WHERE g.organization_id = d.organization_id AND g.donor_id = d.id) AS gifts "
              "FROM crm.donors d WHERE d.organization_id = :org AND d.id = :id", {"org": org, "id": donor_id})
    return row or {"email": None, "first_name": "", "last_name": "", "gifts": 0}
