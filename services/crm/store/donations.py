"""crm's donation SQL: the gift, the donor's giving totals, and pages of gifts."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_COLUMNS = (
    "id, organization_id, donor_id, project_id, amount, currency, date, payment_method, reference_number, "
    "notes, is_recurring, recurring_frequency, tax_deductible, created_at, updated_at"
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
        payment_method, reference_number, notes, is_recurring, recurring_frequency, tax_deductible, request_id)
      SELECT :id, :org, donor.id, :project_id, :amount, :currency, :date, :payment_method, :reference_number,
        :notes, :is_recurring, :recurring_frequency, :tax_deductible, :request_id
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
               limit: int) -> list[dict[str, Any]]:
    """Newest first, keyset on (date, id)."""
    where = ["organization_id = :org"]
    params: dict[str, Any] = {"org": org, "limit": limit}
    if donor_id:
        where.append("donor_id = :donor")
        params["donor"] = donor_id
    if after is not None:
        where.append("(date, id) < (:after_date, :after_id)")
        params["after_date"], params["after_id"] = after
    sql = (f"SELECT {_COLUMNS} FROM crm.donations WHERE {' AND '.join(where)} "
           "ORDER BY date DESC, id DESC LIMIT :limit")
    return [dict(r) for r in (await conn.execute(text(sql), params)).mappings().all()]
