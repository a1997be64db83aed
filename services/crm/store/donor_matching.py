"""crm's SQL for finding donors again: trigram search, duplicate pairs (live for one donor,
precomputed in crm.duplicate_candidates for the organization), merges.

The donors' search_text, name_text and phone_digits are generated columns (migration 0003),
lower-cased and unaccented with crm.immutable_unaccent; queries are normalized the same way
in SQL, so both sides agree. Thresholds are set per transaction (set_config(..., true)) so
the trigram operators can use the GIN indexes.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import text

from chassis.db import Connection
from services.crm.domain import donor_matching as rules
from services.crm.store.donors import DONOR_COLUMNS, GIVING_COLUMN, Donor, to_donor

_SET_WORD_THRESHOLD = text("SELECT set_config('pg_trgm.word_similarity_threshold', CAST(:t AS text), true)")
_SET_THRESHOLD = text("SELECT set_config('pg_trgm.similarity_threshold', CAST(:t AS text), true)")


class ScoredPair(NamedTuple):
    """Two live donors that are probably one person: a, its likely duplicate b, and why."""

    a_id: uuid.UUID
    b_id: uuid.UUID
    same_email: bool
    same_phone: bool
    similar_name: bool
    score: float


# The search order: best score first; equal scores by last name, first name, creation time and
# id, so a search answers the same order every time. A page token holds the last row's key.
SEARCH_ORDER = "s.score DESC, d.last_name, d.first_name, d.created_at, d.id"
SEARCH_KEY_PARSERS = (float, str, str, datetime.fromisoformat, uuid.UUID)


def search_key(row: Donor) -> tuple:
    """A search hit's keyset (see SEARCH_ORDER)."""
    return row.score, row.last_name, row.first_name, row.created_at, row.id


def search_sql(*, paged: bool) -> str:
    """The search statement: live donors whose search text word-resembles :q (or, with :digits,
    whose phone digits hold them), each with its score, in SEARCH_ORDER; keyset after the row
    key (score, last name, first name, creation time, id) when paged.

    The matching is crm.search_donor_ids (migration 0016): under row-level security no index
    could serve `<%` or LIKE (neither is leakproof), so that function runs as the table's owner,
    filters by the caller's tenant (app.tenant_id) itself, and reads the trigram indexes that
    lead with organization_id. It returns ids and scores; the donors are read here, under
    row-level security as always."""
    # -score ascending is score descending, so one row comparison holds the whole order.
    after = ("WHERE (-s.score, d.last_name, d.first_name, d.created_at, d.id) > "
             "(-CAST(:after_score AS double precision), :after_last, :after_first, :after_created, :after_id)"
             if paged else "")
    return f"""
        SELECT {DONOR_COLUMNS}, {GIVING_COLUMN}, s.score
        FROM crm.search_donor_ids(CAST(:q AS text), CAST(:digits AS text)) s
        JOIN crm.donors d ON d.id = s.id AND d.organization_id = :org AND d.deleted_at IS NULL
        {after}
        ORDER BY {SEARCH_ORDER} LIMIT :limit
    """


async def search(conn: Connection, org: uuid.UUID, *, query: str, digits: str, threshold: float,
                 after: list | None, limit: int) -> list[Donor]:
    """Live donors whose names or email resemble `query` (or whose phone holds `digits`), in
    SEARCH_ORDER; `after` is a search_key. Each row carries its score."""
    await conn.execute(_SET_WORD_THRESHOLD, {"t": str(threshold)})
    params: dict[str, Any] = {"org": org, "q": query, "digits": f"%{digits}%" if digits else None,
                              "limit": limit}
    if after is not None:
        (params["after_score"], params["after_last"], params["after_first"], params["after_created"],
         params["after_id"]) = after
    sql = search_sql(paged=after is not None)
    return [to_donor(r) for r in (await conn.execute(text(sql), params)).mappings().all()]


# Candidate pairs are found through equalities of stored blocking keys only (generated
# columns, migration 0014), each served by a partial index on crm.donors: under row-level
# security only a leakproof operator on plain columns (text =) may be an index condition, not
# lower(b.email) = lower(a.email). So the planner joins each branch by index (one donor, a
# batch) or hash (the backfill) and never compares every pair of donors in a city: same
# email_key (donors_email_key), same phone (donors_phone), a similar name (pg_trgm %) in one
# household_key (zip and street) or, between two donors without street and zip, in one
# city_block_key (country, city and the first two letters of the unaccented last name); so a
# big city's many John Smiths at different streets are never compared pairwise. Migration 0014
# holds the same SQL for its backfill.
_SIMILAR_NAME = "a.name_text <> '' AND b.name_text % a.name_text"
# What scores a similar name: the same street and zip, or the same city where neither has a
# street and zip (whatever found the pair).
_SAME_STREET = ("lower(b.address_street) = lower(a.address_street) "
                "AND upper(replace(b.address_zip, ' ', '')) = upper(replace(a.address_zip, ' ', ''))")
_SAME_CITY = ("b.address_country = a.address_country "
              "AND crm.immutable_unaccent(lower(b.address_city)) = crm.immutable_unaccent(lower(a.address_city))")
# A full street address (street and zip) is the address: two that differ are two addresses,
# whatever the city. The city stands for the address only between two donors who both have no
# street and zip (donors_city_block_key holds only those, so a city's thousands of donors with
# full addresses are never looked through).
_CITY_ONLY = "a.household_key IS NULL AND b.household_key IS NULL"
_SAME_ADDRESS = f"(({_SAME_STREET}) OR ({_SAME_CITY} AND {_CITY_ONLY}))"


def _pairs_sql(ids: str) -> str:
    """The scored pairs (a_id, b_id, same_email, same_phone, similar_name, score) of the live
    donors a whose ids are in :ids with every other live donor b of the organization; `ids` is
    how the pair's ids are output (a.id, b.id or normalized).

    Every lookup is a LATERAL subquery fenced with OFFSET 0: a by its id, then b by a's key,
    each a parameterized index scan whatever the statistics say. Right after a bulk import
    they say the table is nearly empty, and plain joins were then planned as nested loops
    that read every donor of the organization for each donor a."""
    def branch(match: str) -> str:
        return (f"SELECT {ids} FROM a CROSS JOIN LATERAL ("
                "SELECT b.id FROM crm.donors b WHERE b.organization_id = :org AND b.deleted_at IS NULL "
                f"AND b.id <> a.id AND {match} OFFSET 0) b")
    return f"""
        WITH a AS MATERIALIZED (
          SELECT a.* FROM unnest(CAST(:ids AS uuid[])) AS x(id) CROSS JOIN LATERAL (
            SELECT a.id, a.email_key, a.phone, a.household_key, a.city_block_key, a.name_text FROM crm.donors a
            WHERE a.organization_id = :org AND a.deleted_at IS NULL AND a.id = x.id OFFSET 0) a
        ), cand AS (
          {branch("b.email_key = a.email_key")}
          UNION
          {branch("b.phone = a.phone")}
          UNION
          {branch(f"b.household_key = a.household_key AND {_SIMILAR_NAME}")}
          UNION
          {branch(f"{_CITY_ONLY} AND b.city_block_key = a.city_block_key AND {_SIMILAR_NAME}")}
        ), scored AS (
          SELECT c.a_id, c.b_id,
            coalesce(lower(a.email) = lower(b.email), false) AS same_email,
            coalesce(a.phone = b.phone, false) AS same_phone,
            CASE WHEN a.name_text <> '' AND {_SAME_ADDRESS}
                 THEN CAST(similarity(a.name_text, b.name_text) AS double precision) ELSE 0 END AS name_sim
          FROM cand c JOIN crm.donors a ON a.id = c.a_id JOIN crm.donors b ON b.id = c.b_id
        )
        SELECT a_id, b_id, same_email, same_phone,
          name_sim >= CAST(:t AS double precision) AS similar_name,
          CAST(round(CAST(1
            - (1 - CASE WHEN same_email THEN CAST(:we AS double precision) ELSE 0 END)
            * (1 - CASE WHEN same_phone THEN CAST(:wp AS double precision) ELSE 0 END)
            * (1 - CASE WHEN name_sim >= CAST(:t AS double precision) THEN name_sim ELSE 0 END)
            AS numeric), 4) AS double precision) AS score
        FROM scored
    """


async def _with_rules(conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
    await conn.execute(_SET_THRESHOLD, {"t": str(rules.NAME_SIMILARITY_THRESHOLD)})
    return {**params, "t": rules.NAME_SIMILARITY_THRESHOLD, "we": rules.EMAIL_WEIGHT, "wp": rules.PHONE_WEIGHT}


def _after(after: list | None, params: dict[str, Any], score: str, a: str, b: str) -> str:
    if after is None:
        return ""
    params["after_score"], params["after_a"], params["after_b"] = after
    # score <= s is an index condition; the rest filters the few rows of equal score.
    return (f"AND {score} <= CAST(:after_score AS double precision) AND ({score} < CAST(:after_score AS "
            f"double precision) OR ({a}, {b}) > (:after_a, :after_b))")


async def duplicates_of(conn: Connection, org: uuid.UUID, donor_id: uuid.UUID, *, after: list | None,
                        limit: int) -> list[ScoredPair]:
    """The live duplicates b of one donor a (a_id is always donor_id), computed now, likeliest
    first; keyset on (score desc, a_id, b_id)."""
    params = await _with_rules(conn, {"org": org, "ids": [donor_id], "limit": limit})
    after_sql = _after(after, params, "score", "a_id", "b_id")
    sql = f"""
        SELECT * FROM ({_pairs_sql("a.id AS a_id, b.id AS b_id")}) p
        WHERE true {after_sql}
        ORDER BY score DESC, a_id, b_id LIMIT :limit
    """
    return [ScoredPair(**r) for r in (await conn.execute(text(sql), params)).mappings().all()]


async def candidate_page(conn: Connection, org: uuid.UUID, *, after: list | None,
                         limit: int) -> list[ScoredPair]:
    """One page of the organization's precomputed pairs (a_id < b_id), likeliest first; keyset
    on (score desc, a_id, b_id). A pair whose donor is no longer live is skipped (the writes
    that end a donor drop its pairs; this is a guard)."""
    params: dict[str, Any] = {"org": org, "limit": limit}
    after_sql = _after(after, params, "c.score", "c.donor_id", "c.duplicate_id")
    sql = f"""
        SELECT c.donor_id AS a_id, c.duplicate_id AS b_id, c.same_email, c.same_phone, c.similar_name, c.score
        FROM crm.duplicate_candidates c
        WHERE c.organization_id = :org {after_sql}
          AND EXISTS (SELECT 1 FROM crm.donors d WHERE d.id = c.donor_id AND d.deleted_at IS NULL)
          AND EXISTS (SELECT 1 FROM crm.donors d WHERE d.id = c.duplicate_id AND d.deleted_at IS NULL)
        ORDER BY c.score DESC, c.donor_id, c.duplicate_id LIMIT :limit
    """
    return [ScoredPair(**r) for r in (await conn.execute(text(sql), params)).mappings().all()]


async def forget_candidates(conn: Connection, org: uuid.UUID, donor_ids: list[uuid.UUID]) -> int:
    """Drop every precomputed pair that involves one of these donors."""
    result = await conn.execute(
        text("DELETE FROM crm.duplicate_candidates WHERE organization_id = :org "
             "AND (donor_id = ANY(:ids) OR duplicate_id = ANY(:ids))"),
        {"org": org, "ids": donor_ids})
    return result.rowcount


# Re-analyze crm.donors once this many rows (and at least a fifth of it) changed since the last
# ANALYZE: a bulk import outruns autovacuum, and stale statistics make every lookup a scan.
_STALE_ROWS = 1000
_STALE_FRACTION = 0.2


async def refresh_statistics_if_stale(conn: Connection) -> bool:
    """ANALYZE crm.donors (through crm.refresh_donor_statistics, migration 0015) when many of
    its rows changed since its statistics were taken; True when it did."""
    row = (await conn.execute(text(
        "SELECT s.n_mod_since_analyze AS changed, greatest(c.reltuples, 0) AS rows "
        "FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
        "WHERE s.relid = CAST('crm.donors' AS regclass)"))).mappings().first()
    if row is None or row["changed"] < max(_STALE_ROWS, _STALE_FRACTION * row["rows"]):
        return False
    await conn.execute(text("SELECT crm.refresh_donor_statistics()"))
    return True


async def refresh_candidates(conn: Connection, org: uuid.UUID, donor_ids: list[uuid.UUID]) -> int:
    """Recompute the precomputed pairs of these donors from their current rows: their old pairs
    go, the pairs of those still live come (index nested loops from each donor; set-based for
    a batch). Returns how many pairs they now have."""
    if not donor_ids:
        return 0
    await forget_candidates(conn, org, donor_ids)
    params = await _with_rules(conn, {"org": org, "ids": donor_ids})
    pairs = _pairs_sql("least(a.id, b.id) AS a_id, greatest(a.id, b.id) AS b_id")
    # ON CONFLICT: a concurrent refresh of the other donor of a pair may have written it.
    result = await conn.execute(text(
        "INSERT INTO crm.duplicate_candidates (organization_id, donor_id, duplicate_id, same_email, same_phone, "
        "similar_name, score) "
        f"SELECT :org, a_id, b_id, same_email, same_phone, similar_name, score FROM ({pairs}) p "
        "ON CONFLICT (organization_id, donor_id, duplicate_id) DO UPDATE SET same_email = EXCLUDED.same_email, "
        "same_phone = EXCLUDED.same_phone, similar_name = EXCLUDED.similar_name, score = EXCLUDED.score, "
        "computed_at = now()"), params)
    return result.rowcount


async def donors_by_ids(conn: Connection, org: uuid.UUID, ids: list[uuid.UUID]) -> dict[uuid.UUID, Donor]:
    return await _by_ids(conn, org, ids, GIVING_COLUMN, "")


async def _by_ids(conn: Connection, org: uuid.UUID, ids: list[uuid.UUID], more: str, tail: str,
                  ) -> dict[uuid.UUID, Donor]:
    """The donors of `ids` with DONOR_COLUMNS and `more`, by id; `tail` orders and locks."""
    rows = (await conn.execute(
        f"SELECT {DONOR_COLUMNS}, {more} FROM crm.donors d WHERE d.organization_id = :org AND d.id = ANY(:ids){tail}",
        {"org": org, "ids": ids},
    )).all()
    return {r["id"]: to_donor(r) for r in rows}


# -- merge ---------------------------------------------------------------------------------


async def lock_any(conn: Connection, org: uuid.UUID, ids: list[uuid.UUID]) -> dict[uuid.UUID, Donor]:
    """The donors (deleted or not, with merged_into_id), locked in id order (no deadlock between
    two merges of the same pair)."""
    return await _by_ids(conn, org, ids, "d.merged_into_id", " ORDER BY d.id FOR UPDATE")


async def merged_into(conn: Connection, org: uuid.UUID, donor_id: uuid.UUID) -> uuid.UUID | None:
    """The survivor a merged donor was folded into (merges keep this one hop deep), else None."""
    return (await conn.execute(
        text("SELECT merged_into_id FROM crm.donors WHERE organization_id = :org AND id = :id"),
        {"org": org, "id": donor_id},
    )).scalar()


async def move_donations(conn: Connection, org: uuid.UUID, survivor: uuid.UUID, merged: uuid.UUID) -> int:
    result = await conn.execute(
        text("UPDATE crm.donations SET donor_id = :s, updated_at = now() "
             "WHERE organization_id = :org AND donor_id = :m"),
        {"org": org, "s": survivor, "m": merged},
    )
    return result.rowcount


# Other tables that point at a donor, moved when they exist (other migrations add them):
# (table, the column a donor appears at most once per value of, if any).
DONOR_REFERENCES: tuple[tuple[str, str | None], ...] = (
    ("crm.donor_list_members", "list_id"),
    ("crm.todos", None),
    ("crm.donor_stage_history", None),
    ("crm.donor_stage_changes", None),
    ("crm.pledges", None),
    ("crm.tax_receipts", None),
)


async def move_references(conn: Connection, org: uuid.UUID, survivor: uuid.UUID,
                          merged: uuid.UUID) -> dict[str, int]:
    """Point the merged donor's rows in DONOR_REFERENCES at the survivor; a membership the
    survivor already has is dropped rather than duplicated. Tables that do not exist are skipped."""
    found = (await conn.execute(
        text("SELECT t.name, array_agg(a.attname::text) AS columns "
             "FROM unnest(CAST(:names AS text[])) AS t(name) "
             "JOIN pg_attribute a ON a.attrelid = to_regclass(t.name) AND a.attnum > 0 AND NOT a.attisdropped "
             "GROUP BY t.name"),
        {"names": [t for t, _ in DONOR_REFERENCES]},
    )).mappings().all()
    columns = {r["name"]: set(r["columns"]) for r in found}
    moved: dict[str, int] = {}
    params = {"org": org, "s": survivor, "m": merged}
    for table, unique_per in DONOR_REFERENCES:  # names are constants above, never input
        cols = columns.get(table)
        if not cols or "donor_id" not in cols:
            continue
        tenant = " AND organization_id = :org" if "organization_id" in cols else ""
        if unique_per and unique_per in cols:
            await conn.execute(text(
                f"DELETE FROM {table} AS x WHERE x.donor_id = :m "
                f"AND EXISTS (SELECT 1 FROM {table} AS y WHERE y.donor_id = :s AND y.{unique_per} = x.{unique_per})"),
                params)
        touch = ", updated_at = now()" if "updated_at" in cols else ""
        result = await conn.execute(text(f"UPDATE {table} SET donor_id = :s{touch} WHERE donor_id = :m{tenant}"),
                                    params)
        moved[table] = result.rowcount
    return moved


async def recompute_giving(conn: Connection, org: uuid.UUID, survivor: uuid.UUID, merged: uuid.UUID) -> None:
    """Both donors' per-currency totals go; the survivor's are summed again from its gifts, net
    of refunds (a fully refunded gift counts in no total, count or date)."""
    params = {"org": org, "s": survivor, "m": merged}
    await conn.execute(
        text("DELETE FROM crm.donor_giving WHERE organization_id = :org AND donor_id IN (:s, :m)"), params)
    await conn.execute(
        text("INSERT INTO crm.donor_giving (organization_id, donor_id, currency, lifetime_amount, donation_count, "
             "first_gift_date, last_gift_date) "
             "SELECT organization_id, donor_id, currency, sum(amount - refunded_amount), count(*), min(date), "
             "max(date) FROM crm.donations WHERE organization_id = :org AND donor_id = :s "
             "AND refunded_amount < amount "
             "GROUP BY organization_id, donor_id, currency"),
        params)


async def mark_merged(conn: Connection, org: uuid.UUID, survivor: uuid.UUID, merged: uuid.UUID) -> Donor:
    """Soft-delete the merged donor pointing at the survivor; donors merged into it before now
    point at the survivor too (one hop); the survivor's version moves on. Returns the survivor."""
    params = {"org": org, "s": survivor, "m": merged}
    await conn.execute(
        text("UPDATE crm.donors SET deleted_at = now(), merged_into_id = :s, updated_at = now(), version = version + 1 "
             "WHERE organization_id = :org AND id = :m"), params)
    await conn.execute(
        text("UPDATE crm.donors SET merged_into_id = :s, updated_at = now() "
             "WHERE organization_id = :org AND merged_into_id = :m"), params)
    row = (await conn.execute(
        text("UPDATE crm.donors AS d SET version = version + 1, updated_at = now() "
             f"WHERE d.organization_id = :org AND d.id = :s RETURNING {DONOR_COLUMNS}, {GIVING_COLUMN}"), params,
    )).mappings().one()
    return to_donor(row)
