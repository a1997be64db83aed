"""crm's giving insight SQL: every figure is aggregated by PostgreSQL over crm.donations, in
one currency. Donor lists join live (not deleted) donors; the donations_donor and
donations_date indexes (organization_id, donor_id|date, ...) serve these queries.

Every figure is net of refunds: a gift counts amount - refunded_amount, and a fully refunded
gift (refunded_amount = amount) is left out altogether (no count, no date, no donor)."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import text

from chassis.db import Connection
from chassis.sql import exists


class DonorGiving(NamedTuple):
    """One donor's giving in one currency: the lifetime total and count, the largest, first and
    last gift (amount and date; None without gifts)."""

    donor_id: uuid.UUID
    lifetime_total: Decimal
    gift_count: int
    largest_amount: Decimal | None
    largest_date: date | None
    first_amount: Decimal | None
    first_date: date | None
    last_amount: Decimal | None
    last_date: date | None


class PeriodFigures(NamedTuple):
    """One calendar period's giving, and its donors retained from the period before."""

    period_start: date
    period_end: date
    total: Decimal
    gift_count: int
    donor_count: int
    previous_donor_count: int
    retained_donor_count: int
    pledged: Decimal
    pledge_count: int
    pledge_received: Decimal


class YearTotal(NamedTuple):
    year: int
    total: Decimal
    gift_count: int


class LybuntDonor(NamedTuple):
    """A donor who gave last year but not this year."""

    donor_id: uuid.UUID
    last_year_total: Decimal
    last_gift_date: date


class SybuntDonor(NamedTuple):
    """A donor who gave some year before this one but not this year."""

    donor_id: uuid.UUID
    lifetime_total: Decimal
    last_gift_date: date


class DonorRfm(NamedTuple):
    """A donor's recency, frequency and monetary figures and their quintiles (1-5); `score`
    is the three digits together, such as "545"."""

    donor_id: uuid.UUID
    recency_days: int
    frequency: int
    monetary: Decimal
    recency_score: int
    frequency_score: int
    monetary_score: int
    score: str


# A gift that still counts (not fully refunded), and what it counts for.
_COUNTS = "d.refunded_amount < d.amount"
_NET = "(d.amount - d.refunded_amount)"
_LIVE = "JOIN crm.donors r ON r.organization_id = d.organization_id AND r.id = d.donor_id AND r.deleted_at IS NULL"


async def donor_exists(conn: Connection, org: uuid.UUID, donor_id: uuid.UUID) -> bool:
    return await exists(conn, "crm.donors", org, donor_id, live=True)


_DONOR_GIVING = text(
    """
    WITH g AS (
      SELECT id, amount - refunded_amount AS amount, date, created_at FROM crm.donations
      WHERE organization_id = :org AND donor_id = :donor AND currency = :cur AND refunded_amount < amount
    )
    SELECT (SELECT COALESCE(sum(amount), 0) FROM g) AS lifetime_total,
           (SELECT count(*) FROM g) AS gift_count,
           big.amount AS largest_amount, big.date AS largest_date,
           fst.amount AS first_amount, fst.date AS first_date,
           lst.amount AS last_amount, lst.date AS last_date
    FROM (SELECT 1) one
    LEFT JOIN LATERAL (SELECT amount, date FROM g ORDER BY amount DESC, date, created_at, id LIMIT 1) big ON true
    LEFT JOIN LATERAL (SELECT amount, date FROM g ORDER BY date, created_at, id LIMIT 1) fst ON true
    LEFT JOIN LATERAL (SELECT amount, date FROM g ORDER BY date DESC, created_at DESC, id DESC LIMIT 1) lst ON true
    """
)

_DONOR_YEARS = text(
    """
    SELECT CAST(extract(year FROM date) AS int) AS year, sum(amount - refunded_amount) AS total,
           count(*) AS gift_count
    FROM crm.donations WHERE organization_id = :org AND donor_id = :donor AND currency = :cur
      AND refunded_amount < amount
    GROUP BY 1 ORDER BY 1
    """
)


async def donor_giving(conn: Connection, org: uuid.UUID, donor_id: uuid.UUID,
                       cur: str) -> tuple[DonorGiving, list[YearTotal]]:
    params = {"org": org, "donor": donor_id, "cur": cur}
    head = DonorGiving(donor_id, **(await conn.execute(_DONOR_GIVING, params)).mappings().one())
    years = [YearTotal(**r) for r in (await conn.execute(_DONOR_YEARS, params)).mappings().all()]
    return head, years


def _keyset(after: list | None, params: dict[str, Any], key: str) -> str:
    """Amount desc then donor id asc, after the last row of the previous page."""
    if after is None:
        return ""
    params["after_amount"], params["after_id"] = after
    return f"WHERE ({key} < :after_amount OR ({key} = :after_amount AND donor_id > :after_id))"


async def lybunt(conn: Connection, org: uuid.UUID, year: int, cur: str, after: list | None,
                 limit: int) -> list[LybuntDonor]:
    """Donors who gave last year (their total then) but not this year."""
    return await _lapsed(conn, org, year, cur, after, limit, "last_year_total", date(year - 1, 1, 1), LybuntDonor)


async def sybunt(conn: Connection, org: uuid.UUID, year: int, cur: str, after: list | None,
                 limit: int) -> list[SybuntDonor]:
    """Donors who gave in some year before (their lifetime total then) but not this year."""
    return await _lapsed(conn, org, year, cur, after, limit, "lifetime_total", None, SybuntDonor)


async def _lapsed(conn: Connection, org: uuid.UUID, year: int, cur: str, after: list | None, limit: int,
                  total: str, since: date | None, record: type) -> list:
    """Donors with gifts since `since` (ever, when None) before this year and none in it, by
    what they gave before this year (`total`), largest first."""
    params: dict[str, Any] = {"org": org, "cur": cur, "limit": limit, "this_start": date(year, 1, 1),
                              "next_start": date(year + 1, 1, 1), "since": since}
    sql = f"""
    WITH per AS (
      SELECT d.donor_id,
             sum({_NET}) FILTER (WHERE d.date < :this_start) AS {total},
             max(d.date) FILTER (WHERE d.date < :this_start) AS last_gift_date,
             count(*) FILTER (WHERE d.date >= :this_start) AS this_year_count
      FROM crm.donations d {_LIVE}
      WHERE d.organization_id = :org AND d.currency = :cur AND {_COUNTS}
        {"" if since is None else "AND d.date >= :since"} AND d.date < :next_start
      GROUP BY d.donor_id
    ), lapsed AS (
      SELECT donor_id, {total}, last_gift_date FROM per
      WHERE {total} IS NOT NULL AND this_year_count = 0
    )
    SELECT * FROM lapsed {_keyset(after, params, total)}
    ORDER BY {total} DESC, donor_id LIMIT :limit
    """
    return [record(**r) for r in (await conn.execute(text(sql), params)).mappings().all()]


async def rfm(conn: Connection, org: uuid.UUID, as_of: date, cur: str, after: list | None,
              limit: int) -> list[DonorRfm]:
    """Quintiles over every live donor with a gift on or before as_of; ties in a figure are
    split by donor id so the scores are deterministic."""
    params: dict[str, Any] = {"org": org, "cur": cur, "limit": limit, "as_of": as_of}
    where_after = ""
    if after is not None:
        params["after_score"], params["after_id"] = after
        where_after = "WHERE (score < :after_score OR (score = :after_score AND donor_id > :after_id))"
    sql = f"""
    WITH win AS (
      SELECT CAST(CAST(:as_of AS date) - interval '3 years' AS date) AS window_start
    ), per AS (
      SELECT d.donor_id,
             CAST(:as_of AS date) - max(d.date) AS recency_days,
             count(*) FILTER (WHERE d.date > win.window_start) AS frequency,
             COALESCE(sum({_NET}) FILTER (WHERE d.date > win.window_start), 0) AS monetary
      FROM crm.donations d {_LIVE} CROSS JOIN win
      WHERE d.organization_id = :org AND d.currency = :cur AND {_COUNTS} AND d.date <= :as_of
      GROUP BY d.donor_id
    ), scored AS (
      SELECT donor_id, recency_days, frequency, monetary,
             ntile(5) OVER (ORDER BY recency_days DESC, donor_id) AS recency_score,
             ntile(5) OVER (ORDER BY frequency, donor_id) AS frequency_score,
             ntile(5) OVER (ORDER BY monetary, donor_id) AS monetary_score
      FROM per
    ), combined AS (
      SELECT *, recency_score::text || frequency_score::text || monetary_score::text AS score FROM scored
    )
    SELECT * FROM combined {where_after} ORDER BY score DESC, donor_id LIMIT :limit
    """
    return [DonorRfm(**r) for r in (await conn.execute(text(sql), params)).mappings().all()]


_STEP = {"year": "1 year", "quarter": "3 months", "month": "1 month"}


async def summary(conn: Connection, org: uuid.UUID, unit: str, start: date, end: date,
                  cur: str) -> list[PeriodFigures]:
    """One row per whole calendar period from start's to end's; every gift counts (deleted
    donors' too). The previous period of the first row is read as well, for its retention."""
    step = _STEP[unit]
    sql = f"""
    WITH periods AS (
      SELECT CAST(p AS date) AS period_start, CAST(p + interval '{step}' AS date) - 1 AS period_end,
             CAST(p - interval '{step}' AS date) AS previous_start
      FROM generate_series(date_trunc('{unit}', CAST(:start AS timestamp)),
                           date_trunc('{unit}', CAST(:end AS timestamp)), interval '{step}') p
    ), gifts AS (
      SELECT CAST(date_trunc('{unit}', CAST(d.date AS timestamp)) AS date) AS period_start, d.donor_id,
             {_NET} AS amount
      FROM crm.donations d
      WHERE d.organization_id = :org AND d.currency = :cur AND {_COUNTS}
        AND d.date >= (SELECT min(previous_start) FROM periods) AND d.date <= (SELECT max(period_end) FROM periods)
    ), donors AS (
      SELECT DISTINCT period_start, donor_id FROM gifts
    )
    SELECT p.period_start, p.period_end,
           COALESCE((SELECT sum(g.amount) FROM gifts g WHERE g.period_start = p.period_start), 0) AS total,
           (SELECT count(*) FROM gifts g WHERE g.period_start = p.period_start) AS gift_count,
           (SELECT count(*) FROM donors a WHERE a.period_start = p.period_start) AS donor_count,
           (SELECT count(*) FROM donors a WHERE a.period_start = p.previous_start) AS previous_donor_count,
           (SELECT count(*) FROM donors a JOIN donors b ON b.donor_id = a.donor_id AND b.period_start = p.period_start
             WHERE a.period_start = p.previous_start) AS retained_donor_count,
           COALESCE((SELECT sum(pl.amount) FROM crm.pledges pl WHERE pl.organization_id = :org AND pl.currency = :cur
             AND pl.start_date BETWEEN p.period_start AND p.period_end), 0) AS pledged,
           (SELECT count(*) FROM crm.pledges pl WHERE pl.organization_id = :org AND pl.currency = :cur
             AND pl.start_date BETWEEN p.period_start AND p.period_end) AS pledge_count,
           COALESCE((SELECT sum({_NET}) FROM crm.donations d WHERE d.organization_id = :org AND d.currency = :cur
             AND d.pledge_id IS NOT NULL AND {_COUNTS} AND d.date BETWEEN p.period_start AND p.period_end), 0)
             AS pledge_received
    FROM periods p ORDER BY p.period_start
    """
    rows = (await conn.execute(text(sql), {"org": org, "cur": cur, "start": start, "end": end})).mappings().all()
    return [PeriodFigures(*r) for r in rows]
