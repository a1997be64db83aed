"""Bulk donor export: every live donor of the organization, in chunks.

Each chunk is a keyset page (created_at, id) read in a short transaction of its own, and no
connection is held while the chunk waits for the client: a client that reads slowly, or not at
all, cannot hold a pooled connection (one cursor's transaction per export did, so a few unread
exports starved every other call). Consistency, page by page: every donor live for the whole
export is in it exactly once, with the state it had when its page was read; a donor created
during the export appears (at the end, as it is the newest), and one deleted before its page is
read does not. Memory holds one chunk, whatever the number of donors. The export reads giving
totals (financial data), so it is audited, once per export, when it starts.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from chassis.audit import ReadAudit
from chassis.db import Database
from chassis.errors import InvalidArgument
from services.crm.domain.donor_import import csv_text as csv_text  # the api writes CSV exports with it
from services.crm.store import donor_import as store
from services.crm.store.donors import Donor

DEFAULT_CHUNK = 500
MAX_CHUNK = 5000


@dataclass(frozen=True)
class ExportDonors:
    chunk_size: int = 0
    journey_stage: str = ""
    tag: str = ""
    with_giving: bool = True


async def export_donors(db: Database, reads: ReadAudit, org: uuid.UUID,
                        q: ExportDonors) -> AsyncIterator[list[Donor]]:
    if q.chunk_size < 0:
        raise InvalidArgument.field("chunk_size", "must not be negative")
    chunk = min(q.chunk_size or DEFAULT_CHUNK, MAX_CHUNK)
    # Audited when it starts: a client that stops reading has still read what it got.
    reads.record("crm.donor.export", "donor", "", after={
        "journey_stage": q.journey_stage, "tag": q.tag, "giving": q.with_giving})
    after = None
    while True:
        async with db.unit_of_work(org) as uow:
            rows = await store.export_page(uow.conn, org, journey_stage=q.journey_stage or None, tag=q.tag or None,
                                           with_giving=q.with_giving, after=after, limit=chunk)
        if rows:  # the connection is back in the pool before the client is waited for
            yield rows
        if len(rows) < chunk:
            return
        after = (rows[-1].created_at, rows[-1].id)
