"""Bulk donor import: rows in, batches upserted by external_id, progress out.

Reading and validating run in a task of their own, one batch ahead of the writer, so Python's
work on batch n+1 overlaps the database's on batch n; at most three batches are in memory
(the one written, the one queued, the one being read), whatever the size of the import. A
batch ends at `batch_size` rows or `batch_bytes` bytes of rows as received, whichever first.
Each batch is its own transaction: its donors, one `crm.donors.imported` event and one audit
entry commit together, so the progress reported is durable. A row the database still refuses
(a rule the validation does not know) sends its batch through again one savepoint per row,
so that row alone is rejected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg
from givance.events.v1 import crm_events_pb2

from chassis.db import Database
from services.crm.domain import donor_import as rules
from services.crm.domain.donor_import import CsvReader as CsvReader  # the api reads CSV imports with it
from services.crm.domain.donor_import import ImportRow, Rejection
from services.crm.domain.journeys import stage_ids
from services.crm.store import donor_import as store
from services.crm.store import journeys as journey_store

log = logging.getLogger(__name__)

EVENT = "crm.donors.imported"


@dataclass
class Progress:
    rows_read: int = 0
    created: int = 0
    updated: int = 0
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    done: bool = False


@dataclass
class _Batch:
    first_row: int
    last_row: int
    rows: list[tuple[int, str, object]]  # (row number, external_id, normalized DonorFields)
    rejections: list[Rejection]
    columns: frozenset[str] | None = None  # what a known donor gets updated


_END = object()
_YIELD_EVERY = 50  # rows validated between two turns of the event loop


async def import_donors(db: Database, org: uuid.UUID, rows: AsyncIterator[ImportRow], *,
                        batch_size: int = rules.DEFAULT_BATCH,
                        batch_bytes: int = rules.MAX_BATCH_BYTES) -> AsyncIterator[Progress]:
    """Progress after every batch, then the final totals (done)."""
    async with db.unit_of_work(org) as uow:
        validator = rules.Validator(stage_ids(await journey_store.get_graph(uow.conn, org)))
    import_id = str(uuid.uuid4())
    queue: asyncio.Queue = asyncio.Queue(maxsize=1)
    reader = asyncio.create_task(_read(rows, validator, batch_size, batch_bytes, queue))
    totals = Progress()
    try:
        while True:
            batch = await queue.get()
            if batch is _END:
                break
            if isinstance(batch, Exception):
                raise batch
            written = await _write(db, org, import_id, batch)
            totals.rows_read = batch.last_row
            totals.created += written.created
            totals.updated += written.updated
            totals.rejected += written.rejected
            yield Progress(totals.rows_read, totals.created, totals.updated, totals.rejected, written.rejections)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    totals.done = True
    yield totals


async def _read(rows: AsyncIterator[ImportRow], validator: rules.Validator, batch_size: int, batch_bytes: int,
                queue: asyncio.Queue) -> None:
    try:
        batch = _Batch(0, 0, [], [])
        size = 0
        async for row in rows:
            if not batch.first_row:
                batch.first_row = row.number
            batch.last_row = row.number
            batch.columns = row.columns
            if row.number % _YIELD_EVERY == 0:
                await asyncio.sleep(0)  # let the writer's next round trip go out: the two overlap
            clean, violations = validator.validate(row)
            if clean is None:
                batch.rejections.append(Rejection(row.number, row.external_id, violations))
            else:
                batch.rows.append((row.number, clean.external_id, clean))
            size += row.size
            if len(batch.rows) + len(batch.rejections) >= batch_size or size >= batch_bytes:
                await queue.put(batch)
                batch = _Batch(0, 0, [], [])
                size = 0
        if batch.first_row:
            await queue.put(batch)
        await queue.put(_END)
    except Exception as exc:  # noqa: BLE001 - handed to the writer, which raises it in the stream
        await queue.put(exc)


async def _write(db: Database, org: uuid.UUID, import_id: str, batch: _Batch) -> Progress:
    kept, duplicates = rules.dedupe(batch.rows)
    rejections = sorted(batch.rejections + duplicates, key=lambda r: r.number)
    try:
        async with db.unit_of_work(org) as uow:
            written = []
            if kept:
                await store.create_stage(uow.conn)
                written = await store.upsert(uow.conn, org, [store.record(f) for _, _, f in kept], batch.columns)
            _record(uow, import_id, batch, written, len(rejections))
    except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as exc:
        log.info("import %s: batch %d-%d refused (%s); row by row", import_id, batch.first_row, batch.last_row, exc)
        return await _write_row_by_row(db, org, import_id, batch, kept, rejections)
    created = sum(1 for _, c in written if c)
    return Progress(created=created, updated=len(written) - created, rejected=len(rejections), rejections=rejections)


async def _write_row_by_row(db: Database, org: uuid.UUID, import_id: str, batch: _Batch, kept: list,
                            rejections: list[Rejection]) -> Progress:
    rejections = list(rejections)
    written: list[tuple[uuid.UUID, bool]] = []
    async with db.unit_of_work(org) as uow:
        await store.create_stage(uow.conn)
        for number, ext, fields in kept:
            try:
                async with uow.conn.begin_nested():
                    written += await store.upsert(uow.conn, org, [store.record(fields)], batch.columns)
            except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as exc:
                rejections.append(Rejection(number, ext, [("row", f"refused by the database: {exc}")]))
        rejections.sort(key=lambda r: r.number)
        _record(uow, import_id, batch, written, len(rejections))
    created = sum(1 for _, c in written if c)
    return Progress(created=created, updated=len(written) - created, rejected=len(rejections), rejections=rejections)


def _record(uow, import_id: str, batch: _Batch, written: list[tuple[uuid.UUID, bool]], rejected: int) -> None:
    created_ids = [str(i) for i, c in written if c]
    updated_ids = [str(i) for i, c in written if not c]
    uow.publish(EVENT, crm_events_pb2.DonorsImportedEvent(
        import_id=import_id, first_row=batch.first_row, last_row=batch.last_row, created=len(created_ids),
        updated=len(updated_ids), rejected=rejected, created_donor_ids=created_ids, updated_donor_ids=updated_ids,
    ), aggregate_type="donor_import", aggregate_id=import_id)
    uow.audit("crm.donor.import", "donor_import", import_id, after={
        "first_row": batch.first_row, "last_row": batch.last_row, "created": len(created_ids),
        "updated": len(updated_ids), "rejected": rejected,
    })
