"""The workflow worker (beside crm's server: __main__'s background): claims due actions and runs them.

Each pass claims up to `batch` due rows of every tenant (FOR UPDATE SKIP LOCKED, leased), but
a suspended organization's (`paused`: they wait, due, until its reactivation), then
runs them concurrently, each in its tenant's unit of work (handlers.workflow_runs.run_due). It
is woken by NOTIFY on crm_workflow_due when a step is scheduled for now, and polls as a fallback
(waits, retries, schedules). Several replicas share the table; a crashed one's leases run out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable

import asyncpg

from chassis import faults
from chassis.db import Database
from services.crm.handlers import workflow_runs
from services.crm.handlers.workflow_runs import SYSTEM_CLOCK, Clock
from services.crm.handlers.workflow_steps import Effects
from services.crm.store.workflows import DUE_CHANNEL

log = logging.getLogger(__name__)


def _report(exc: Exception, what: str) -> None:
    """An outage of the database (chassis.faults) is a warning: the work waits for it; anything
    else is an error with its traceback."""
    if faults.is_transient(exc):
        log.warning("%s (%s: %s)", what, type(exc).__name__, exc)
    else:
        log.error("%s", what, exc_info=exc)


class WorkflowWorker:
    def __init__(self, db: Database, effects: Effects, *, clock: Clock = SYSTEM_CLOCK, dsn: str | None = None,
                 batch: int = 32, concurrency: int = 8, poll_seconds: float = 1.0,
                 paused: Callable[[], list[uuid.UUID]] = list):
        self.db, self.effects, self.clock, self.dsn = db, effects, clock, dsn
        # the organizations whose work waits (suspended: chassis.revocation's suspended_organizations)
        self.paused = paused
        self.batch, self.poll_seconds = batch, poll_seconds
        self._limit = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._stopping = False

    async def _one(self, due) -> None:
        async with self._limit:
            try:
                await workflow_runs.run_due(self.db, due, self.effects, self.clock)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 (its lease runs out and it is tried again)
                _report(exc, f"workflow due action {due.id} ({due.kind}) failed; its lease runs out, then again")

    async def run_once(self) -> int:
        """One pass: claim what is due and run it. Returns how many rows were claimed."""
        claimed = await workflow_runs.claim(self.db, self.clock, self.batch, self.paused())
        await asyncio.gather(*(self._one(d) for d in claimed))
        return len(claimed)

    async def run_until_idle(self, max_passes: int = 100) -> int:
        """Passes until nothing is due (tests): the number of rows run."""
        total = 0
        for _ in range(max_passes):
            n = await self.run_once()
            if n == 0:
                return total
            total += n
        return total

    async def run(self) -> None:
        """Keeps up to `batch` claimed rows in flight (`concurrency` of them running); claims
        more as they finish, on a NOTIFY, or every poll_seconds."""
        listener = await self._listen()
        inflight: set[asyncio.Task] = set()

        def finished(task: asyncio.Task) -> None:
            inflight.discard(task)
            self._wake.set()  # a finished step has often made the next one due

        try:
            while not self._stopping:
                self._wake.clear()
                room = self.batch - len(inflight)
                claimed = []
                if room > 0:
                    try:
                        claimed = await workflow_runs.claim(self.db, self.clock, room, self.paused())
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:  # noqa: BLE001 (reported; the loop goes on)
                        _report(exc, "workflow worker: claiming failed; trying again")
                for due in claimed:
                    task = asyncio.create_task(self._one(due))
                    inflight.add(task)
                    task.add_done_callback(finished)
                if claimed and len(claimed) == room:
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            if inflight:
                await asyncio.wait(inflight)
        finally:
            for task in inflight:
                task.cancel()
            if listener is not None:
                with contextlib.suppress(Exception):
                    await listener.close()
            for provider in (self.effects.webhooks, self.effects.messenger):  # after the last step
                close = getattr(provider, "close", None)
                if close is not None:
                    with contextlib.suppress(Exception):
                        await close()

    async def _listen(self) -> asyncpg.Connection | None:
        if not self.dsn:
            return None
        try:
            conn = await asyncpg.connect(self.dsn)
            await conn.add_listener(DUE_CHANNEL, lambda *_: self._wake.set())
            return conn
        except (OSError, asyncpg.PostgresError):
            log.warning("workflow worker: no LISTEN connection; polling every %.1fs", self.poll_seconds)
            return None

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()

