"""Audited reads, written in batches.

Writes are audited inside their own transaction (UnitOfWork.audit): the entry exists if and
only if the change does. A read changes nothing, and auditing it inside the request would turn
every read into a committed write (a WAL flush per GetDonor). Reads of donor financial data
are therefore queued in memory and written to the outbox in one transaction per tenant every
`interval` seconds (and at shutdown). The price, stated plainly: a crash of the process can
lose up to `interval` seconds of read entries; it can never lose or invent a write entry.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from givance.events.v1 import audit_events_pb2

from chassis import context, events
from chassis.db import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Read:
    tenant_id: uuid.UUID
    action: str
    resource_type: str
    resource_id: str
    actor_id: str
    actor_kind: str
    request_id: str
    peer: str
    after: dict | None
    occurred_at: datetime


class ReadAudit:
    def __init__(self, db: Database, *, interval: float = 0.25, max_batch: int = 2000):
        self.db = db
        self.interval = interval
        self.max_batch = max_batch
        self._pending: list[_Read] = []
        self._wake = asyncio.Event()
        self._stopping = False

    def record(self, action: str, resource_type: str, resource_id: str, after: dict | None = None) -> None:
        """Queue one audited read of the current request (no I/O)."""
        ctx = context.current()
        principal = ctx.principal
        assert ctx.tenant_id is not None, "an audited read needs a tenant"
        self._pending.append(_Read(
            tenant_id=ctx.tenant_id, action=action, resource_type=resource_type, resource_id=resource_id,
            actor_id=(principal.actor or principal.subject) if principal else "",
            actor_kind=principal.kind if principal else "system",
            request_id=ctx.request_id, peer=ctx.peer, after=after, occurred_at=datetime.now(UTC),
        ))
        if len(self._pending) >= self.max_batch:
            self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.flush()
            except Exception as exc:  # noqa: BLE001 - keep the entries, try again next round
                log.warning("read audit: flush failed (%s); retrying", exc)

    async def flush(self) -> int:
        """Write what is queued: one batch event per tenant, each in its own transaction."""
        batch, self._pending = self._pending, []
        if not batch:
            return 0
        by_tenant: dict[uuid.UUID, list[_Read]] = {}
        for r in batch:
            by_tenant.setdefault(r.tenant_id, []).append(r)
        written = 0
        for tenant, reads in by_tenant.items():
            payload = audit_events_pb2.AuditBatchRecordedEvent(entries=[
                events.audit_entry(r.action, r.resource_type, r.resource_id, service=self.db.schema,
                                   actor_id=r.actor_id, actor_kind=r.actor_kind, request_id=r.request_id,
                                   ip_address=r.peer, after=r.after, occurred_at=r.occurred_at)
                for r in reads
            ])
            try:
                async with self.db.unit_of_work(tenant) as uow:
                    uow.publish(f"{self.db.schema}.audit.batch_recorded", payload, aggregate_type="audit",
                                aggregate_id=str(tenant))
                written += len(reads)
            except BaseException:
                self._pending[:0] = reads  # not written: back to the front of the queue
                raise
        return written

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        await self.flush()
