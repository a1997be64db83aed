"""Clicks recorded in shared transactions (group commit).

A click's redirect waits until its click is committed, so no click is acknowledged unrecorded;
but the clicks that arrive while batches commit are written together by the next (one
transaction per organization per batch; up to WRITERS_MAX batches under way at once, so a click
waits for little more than its own), instead of each queueing for a pooled connection of its
own. A link's destination, its message's sending time and donor never change once sent, so they
are read once per process (a bounded cache) and a click costs no read.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

from givance.events.v1 import comms_events_pb2

from chassis.convert import timestamp
from services.comms.domain import messages as rules
from services.comms.domain import tracking
from services.comms.domain.tracking import TokenClaims
from services.comms.handlers.deps import Deps
from services.comms.store import messages as store

log = logging.getLogger(__name__)

CACHE_MAX = 20_000
BATCH_MAX = 500
WRITERS_MAX = 4  # transactions writing clicks at once: a click waits for at most one under way


@dataclass(slots=True)
class _Click:
    org: uuid.UUID
    message_id: uuid.UUID
    url: str
    donor_id: uuid.UUID | None
    machine: bool
    user_agent: str
    at: datetime
    done: asyncio.Future


class ClickRecorder:
    def __init__(self, deps: Deps):
        self.deps = deps
        self._targets: dict[tuple[uuid.UUID, uuid.UUID, uuid.UUID], tuple[str, datetime, uuid.UUID | None]] = {}
        self._pending: list[_Click] = []
        self._writers: set[asyncio.Task] = set()

    async def click(self, claims: TokenClaims, user_agent: str) -> str | None:
        """The link's stored destination once the click is committed (None: no such link of that
        message in that organization; nothing written)."""
        key = (claims.organization_id, claims.message_id, claims.link_id)
        target = self._targets.get(key)
        if target is None:
            async with self.deps.db.unit_of_work(claims.organization_id) as uow:
                found = await store.link_target(uow.conn, *key)
            if found is None:
                return None
            quick = self.deps.settings.machine_open_seconds
            if found[1] is not None and (datetime.now(UTC) - found[1]).total_seconds() > quick:
                # sent, and past the seconds in which a click is a machine's: nothing of it changes
                if len(self._targets) >= CACHE_MAX:
                    self._targets.clear()
                self._targets[key] = found
            target = found
        url, sent_at, donor_id = target
        now = datetime.now(UTC)
        machine = tracking.is_machine(user_agent, sent_at, now, self.deps.settings.machine_open_seconds)
        done = asyncio.get_running_loop().create_future()
        self._pending.append(_Click(claims.organization_id, claims.message_id, url, donor_id, machine,
                                    (user_agent or "")[:500], now, done))
        self._writers = {w for w in self._writers if not w.done()}  # a finished one found no click pending
        if len(self._writers) < WRITERS_MAX:
            self._writers.add(asyncio.ensure_future(self._flush()))
        await asyncio.shield(done)  # a client gone does not take the batch's other clicks with it
        return url

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:BATCH_MAX], self._pending[BATCH_MAX:]
            by_org: dict[uuid.UUID, list[_Click]] = defaultdict(list)
            for c in batch:
                by_org[c.org].append(c)
            for org, clicks in by_org.items():
                try:
                    await self._write(org, clicks)
                except Exception as exc:  # these clicks fail (the redirect is an error); the next batch goes on
                    log.exception("clicks: a batch of %d could not be recorded", len(clicks))
                    for c in clicks:
                        if not c.done.done():
                            c.done.set_exception(exc)
                    continue
                for c in clicks:
                    if not c.done.done():
                        c.done.set_result(None)

    async def _write(self, org: uuid.UUID, clicks: list[_Click]) -> None:
        async with self.deps.db.unit_of_work(org) as uow:
            await store.add_clicks(uow.conn, org, [(c.message_id, c.machine, c.url, c.user_agent or None, c.at)
                                                   for c in clicks])
            for c in clicks:
                uow.publish(rules.EMAIL_CLICKED, comms_events_pb2.EmailClickedEvent(
                    message_id=str(c.message_id), donor_id=str(c.donor_id or ""), url=c.url, machine=c.machine,
                    click_time=timestamp(c.at)), aggregate_type="message", aggregate_id=str(c.message_id))
