"""crm's rollup check SQL: every kept total summed again from the rows it totals, compared with
what is kept. Each query returns the keys whose kept and recomputed values differ (a kept row
that should not exist, or a missing one, differs too)."""

from __future__ import annotations

import uuid
from typing import NamedTuple

from sqlalchemy import text

from chassis.db import Connection
from services.crm.store.pledges import PAID_SUMS
from services.crm.store.soft_credits import SOFT_SUMS


class Difference(NamedTuple):
    rollup: str  # hard, soft, ...
    key: str  # e.g. "<donor id> USD"
    kept: str  # the kept values, or "missing"
    expected: str  # the values recomputed from the gifts, or "none"


_HARD = (
    "SELECT donor_id, currency, sum(amount - refunded_amount) AS total, count(*) AS n, min(date) AS first_date, "
    "max(date) AS last_date FROM crm.donations WHERE organization_id = :org AND refunded_amount < amount "
    "GROUP BY donor_id, currency"
)

# (name, the recomputed sums, the kept table and its columns in the same order)
_CHECKS: tuple[tuple[str, str, str, str], ...] = (
    ("hard", _HARD, "crm.donor_giving",
     "donor_id, currency, lifetime_amount AS total, donation_count AS n, first_gift_date AS first_date, "
     "last_gift_date AS last_date"),
    ("soft", f"{SOFT_SUMS} GROUP BY s.donor_id, d.currency", "crm.donor_soft_giving",
     "donor_id, currency, soft_amount AS total, soft_count AS n, first_gift_date AS first_date, "
     "last_gift_date AS last_date"),
)


def _compare(expected_sql: str, table: str, kept_columns: str) -> str:
    return (
        f"WITH e AS ({expected_sql}), k AS (SELECT {kept_columns} FROM {table} WHERE organization_id = :org) "
        "SELECT COALESCE(e.donor_id, k.donor_id)::text || ' ' || COALESCE(e.currency, k.currency) AS key, "
        "CASE WHEN k.donor_id IS NULL THEN 'missing' ELSE concat_ws(' ', k.total, k.n, k.first_date, k.last_date) "
        "END AS kept, CASE WHEN e.donor_id IS NULL THEN 'none' "
        "ELSE concat_ws(' ', e.total, e.n, e.first_date, e.last_date) END AS expected "
        "FROM e FULL JOIN k ON k.donor_id = e.donor_id AND k.currency = e.currency "
        "WHERE (e.total, e.n, e.first_date, e.last_date) IS DISTINCT FROM (k.total, k.n, k.first_date, k.last_date) "
        "ORDER BY 1"
    )


# (name, a query returning key, kept, expected): checks of another shape.
EXTRA: list[tuple[str, str]] = [
    ("split", "SELECT d.id::text AS key, concat_ws(' ', sum(a.amount), sum(a.refunded_amount)) AS kept, "
              "concat_ws(' ', d.amount, d.refunded_amount) AS expected FROM crm.donations d "
              "JOIN crm.gift_allocations a ON a.organization_id = d.organization_id AND a.donation_id = d.id "
              "WHERE d.organization_id = :org GROUP BY d.id, d.amount, d.refunded_amount "
              "HAVING sum(a.amount) <> d.amount OR sum(a.refunded_amount) <> d.refunded_amount"),
    # A pledge's received amount, payment count and status, from the gifts that pay it.
    ("pledge", "SELECT p.id::text AS key, concat_ws(' ', p.received_amount, p.payment_count, p.status) AS kept, "
               "concat_ws(' ', e.received, e.n, e.status) AS expected FROM crm.pledges p "
               f"LEFT JOIN ({PAID_SUMS} GROUP BY pledge_id) x ON x.pledge_id = p.id "
               "CROSS JOIN LATERAL (SELECT COALESCE(x.received, 0) AS received, COALESCE(x.n, 0) AS n, "
               "CASE WHEN p.status = 'written_off' THEN p.status WHEN COALESCE(x.received, 0) >= p.amount "
               "THEN 'fulfilled' ELSE 'open' END AS status) e WHERE p.organization_id = :org "
               "AND (p.received_amount, p.payment_count, p.status) IS DISTINCT FROM (e.received, e.n, e.status)"),
    # A live tax receipt says what its gift does: net amount, date, donor, currency, deductible.
    ("receipt", "SELECT r.id::text AS key, concat_ws(' ', r.amount, r.gift_date, r.donor_id, r.currency) AS kept, "
                "concat_ws(' ', d.amount - d.refunded_amount, d.date, d.donor_id, d.currency, "
                "CASE WHEN NOT d.tax_deductible THEN 'not deductible' END) AS expected FROM crm.tax_receipts r "
                "JOIN crm.donations d ON d.organization_id = r.organization_id AND d.id = r.donation_id "
                "WHERE r.organization_id = :org AND r.status = 'issued' AND (NOT d.tax_deductible OR "
                "(r.amount, r.gift_date, r.donor_id, r.currency) IS DISTINCT FROM "
                "(d.amount - d.refunded_amount, d.date, d.donor_id, d.currency))"),
]


async def differences(conn: Connection, org: uuid.UUID, limit: int) -> list[Difference]:
    """One statement, so every rollup is compared in one snapshot: a write committing meanwhile
    is seen whole or not at all."""
    queries = [(name, _compare(sql, table, cols)) for name, sql, table, cols in _CHECKS] + EXTRA
    union = " UNION ALL ".join(f"(SELECT '{name}' AS rollup, * FROM ({q}) AS x{i})"
                               for i, (name, q) in enumerate(queries))
    rows = (await conn.execute(text(f"SELECT * FROM ({union}) AS d LIMIT {int(limit)}"),
                               {"org": org})).mappings().all()
    return [Difference(r["rollup"], r["key"], r["kept"], r["expected"]) for r in rows]


async def organizations(conn: Connection) -> list[uuid.UUID]:
    """Every organization with a donor (the operator command's connection sees every tenant)."""
    return list((await conn.execute(text("SELECT DISTINCT organization_id FROM crm.donors"))).scalars().all())
