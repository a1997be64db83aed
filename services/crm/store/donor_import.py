"""crm's bulk donor SQL: the import's staged upsert and the export's cursor.

An import batch is COPYed (binary, asyncpg) into a temporary table that lives only as long as
the batch's transaction, then merged into crm.donors by one INSERT ... SELECT ... ON CONFLICT
on the live external_id index; RETURNING (xmax = 0) tells a created row from an updated one.
Every statement runs under the unit of work's tenant (RLS), and the conflict target includes
organization_id, so an import can only ever match its own organization's donors.
"""

from __future__ import annotations

import json
import operator
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy import text

from chassis.db import Connection, compile_sql
from services.crm.domain.donors import DonorFields
from services.crm.store.donors import _COLUMNS, _GIVING, _WRITE_COLUMNS, _row, live_donors_where

_STAGE = "donor_import_stage"
_COLS = ", ".join(_WRITE_COLUMNS)
# Shaped like crm.donors' writable columns, whatever they are; gone when the transaction ends.
_STAGE_DDL = f"CREATE TEMPORARY TABLE {_STAGE} ON COMMIT DROP AS SELECT {_COLS} FROM crm.donors WITH NO DATA"
_UPSERTS: dict[frozenset[str] | None, str] = {}


def _upsert_sql(update: frozenset[str] | None) -> str:
    """Insert the staged rows; a known external_id updates the columns `update` (None: all)."""
    sql = _UPSERTS.get(update)
    if sql is None:
        # A known donor keeps its journey stage: after creation a stage moves only along the
        # journey (JourneyService.MoveDonorStage); an import sets it only where there is none.
        sets = [f"{c} = COALESCE(d.{c}, EXCLUDED.{c})" if c == "journey_stage" else f"{c} = EXCLUDED.{c}"
                for c in _WRITE_COLUMNS if c != "external_id" and (update is None or c in update)]
        sql = _UPSERTS[update] = (
            f"INSERT INTO crm.donors AS d (id, organization_id, {_COLS}) "
            f"SELECT gen_random_uuid(), $1::uuid, {_COLS} FROM pg_temp.{_STAGE} "
            "ON CONFLICT (organization_id, external_id) WHERE external_id IS NOT NULL AND deleted_at IS NULL "
            f"DO UPDATE SET {', '.join([*sets, 'version = d.version + 1', 'updated_at = now()'])} "
            "RETURNING d.id, (d.xmax = 0) AS created"
        )
    return sql


_VALUES = operator.attrgetter(*_WRITE_COLUMNS)
_CUSTOM = _WRITE_COLUMNS.index("custom_fields")
_TAGS = _WRITE_COLUMNS.index("tags")


def record(f: DonorFields) -> list:
    """A validated donor as a staging row (the order of _WRITE_COLUMNS)."""
    values = list(_VALUES(f))
    values[_CUSTOM] = json.dumps(f.custom_fields) if f.custom_fields else "{}"
    values[_TAGS] = list(f.tags or [])
    return values


async def create_stage(conn: Connection) -> None:
    await conn.raw.execute(_STAGE_DDL)


async def upsert(conn: Connection, org: uuid.UUID, records: Sequence[tuple],
                 update: frozenset[str] | None = None) -> list[tuple[uuid.UUID, bool]]:
    """Stage `records` (external_ids unique among them) and merge them: (donor id, created) each.
    An existing donor gets the columns named in `update` (None: every writable column). The
    stage must exist in this transaction (create_stage); it is emptied first."""
    raw = conn.raw
    await raw.execute(f"DELETE FROM pg_temp.{_STAGE}")  # empty but for the row-by-row retry
    await raw.copy_records_to_table(_STAGE, records=records, columns=_WRITE_COLUMNS, schema_name="pg_temp")
    rows = await raw.fetch(_upsert_sql(update), org)
    return [(r[0], r[1]) for r in rows]


async def export_rows(conn: Connection, org: uuid.UUID, *, journey_stage: str | None, tag: str | None,
                      with_giving: bool, chunk: int) -> AsyncIterator[list[dict[str, Any]]]:
    """Every live donor of `org`, oldest first, `chunk` at a time, through one server-side
    cursor: one statement, so one snapshot, whatever the transaction's isolation."""
    where, params = live_donors_where(org, journey_stage=journey_stage, tag=tag)
    giving = f", {_GIVING}" if with_giving else ""
    sql, names = compile_sql(text(f"SELECT {_COLUMNS}{giving} FROM crm.donors d WHERE {' AND '.join(where)} "
                                  "ORDER BY d.created_at, d.id"))
    await conn.raw.execute("SET TRANSACTION READ ONLY")
    # asyncpg's cursor wants its own transaction object; DECLARE and FETCH do the same. The
    # cursor's name says its row shape (asyncpg caches the FETCH's description by its text).
    name = "donor_export_giving" if with_giving else "donor_export"
    await conn.raw.execute(f"DECLARE {name} NO SCROLL CURSOR FOR {sql}", *(params[n] for n in names))
    fetch = f"FETCH FORWARD {int(chunk)} FROM {name}"
    while True:
        rows = await conn.raw.fetch(fetch)
        if not rows:
            return
        yield [_row(r) for r in rows]
