"""crm.donors.imported -> the imported donors' duplicate pairs (crm.duplicate_candidates).

An import's batches do not refresh their pairs in the import's transaction (that would slow
every batch of up to a million rows); this consumer does, one event (batch) at a time, from
the donors' current rows: a redelivered or late event recomputes the same, current, pairs.
"""

from __future__ import annotations

import uuid

from givance.events.v1 import crm_events_pb2, event_pb2

from chassis import events
from chassis.db import UnitOfWork
from services.crm.handlers.donor_matching import refresh_imported

QUEUE = "crm.duplicate-candidates"
BINDINGS = ["crm.donors.imported"]


async def on_donors_imported(uow: UnitOfWork, event: event_pb2.Event) -> None:
    imported = events.unpack(event, crm_events_pb2.DonorsImportedEvent)
    await refresh_imported(uow, uuid.UUID(event.tenant_id),
                           [*imported.created_donor_ids, *imported.updated_donor_ids])
