"""Bulk donor export: every live donor of the organization, in chunks, from one snapshot.

One read-only transaction and one server-side cursor: memory holds one chunk, whatever the
number of donors. The export reads giving totals (financial data), so it is audited, once per
export, when it starts.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from chassis.audit import ReadAudit
from chassis.db import Database
from chassis.errors import InvalidArgument
from services.crm.store import donor_import as store

DEFAULT_CHUNK = 500
MAX_CHUNK = 5000


@dataclass(frozen=True)
class ExportDonors:
    chunk_size: int = 0
    journey_stage: str = ""
    tag: str = ""
    with_giving: bool = True


async def export_donors(db: Database, reads: ReadAudit, org: uuid.UUID,
                        q: ExportDonors) -> AsyncIterator[list[dict]]:
    if q.chunk_size < 0:
        raise InvalidArgument.field("chunk_size", "must not be negative")
    chunk = min(q.chunk_size or DEFAULT_CHUNK, MAX_CHUNK)
    # Audited when it starts: a client that stops reading has still read what it got.
    reads.record("crm.donor.export", "donor", "", after={
        "journey_stage": q.journey_stage, "tag": q.tag, "giving": q.with_giving})
    async with db.unit_of_work(org) as uow:
        async for rows in store.export_rows(uow.conn, org, journey_stage=q.journey_stage or None,
                                            tag=q.tag or None, with_giving=q.with_giving, chunk=chunk):
            yield rows
