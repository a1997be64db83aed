"""crm's bulk donor SQL: the import's staged upsert and the export's pages.

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
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import text

from chassis.db import Connection
from services.crm.domain.donors import DonorFields
from services.crm.store.donors import DONOR_COLUMNS, GIVING_COLUMN, WRITE_COLUMNS, Donor, live_donors_where, to_donor

_STAGE = "donor_import_stage"
_COLS = ", ".join(WRITE_COLUMNS)
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
                for c in WRITE_COLUMNS if c != "external_id" and (update is None or c in update)]
        sql = _UPSERTS[update] = (
            f"INSERT INTO crm.donors AS d (id, organization_id, {_COLS}) "
            f"SELECT gen_random_uuid(), $1::uuid, {_COLS} FROM pg_temp.{_STAGE} "
            "ON CONFLICT (organization_id, external_id) WHERE external_id IS NOT NULL AND deleted_at IS NULL "
            f"DO UPDATE SET {', '.join([*sets, 'version = d.version + 1', 'updated_at = now()'])} "
            "RETURNING d.id, (d.xmax = 0) AS created"
        )
    return sql


_VALUES = operator.attrgetter(*WRITE_COLUMNS)
_CUSTOM = WRITE_COLUMNS.index("custom_fields")
_TAGS = WRITE_COLUMNS.index("tags")


def record(f: DonorFields) -> list:
    """A validated donor as a staging row (the order of WRITE_COLUMNS)."""
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
    await raw.copy_records_to_table(_STAGE, records=records, columns=WRITE_COLUMNS, schema_name="pg_temp")
    rows = await raw.fetch(_upsert_sql(update), org)
    return [(r[0], r[1]) for r in rows]


async def export_page(conn: Connection, org: uuid.UUID, *, journey_stage: str | None, tag: str | None,
                      with_giving: bool, after: tuple[datetime, uuid.UUID] | None, limit: int) -> list[Donor]:
    """One page of `org`'s live donors, oldest first, after the (created_at, id) `after`: an
    export reads page by page, each in a short transaction of its own."""
    where, params = live_donors_where(org, journey_stage=journey_stage, tag=tag)
    if after is not None:
        where.append("(d.created_at, d.id) > (:after_created, :after_id)")
        params["after_created"], params["after_id"] = after
    params["limit"] = limit
    giving = f", {GIVING_COLUMN}" if with_giving else ""
    sql = (f"SELECT {DONOR_COLUMNS}{giving} FROM crm.donors d WHERE {' AND '.join(where)} "
           "ORDER BY d.created_at, d.id LIMIT :limit")
    return [to_donor(r) for r in (await conn.execute(text(sql), params)).mappings().all()]
