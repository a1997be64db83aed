"""Event lag: from the transaction that wrote an event to the consumer's handler.

The probe is an ordinary consumer (chassis.consumer.Consumer, its inbox in the crm schema,
connected as the crm role) with its own queue bound to `crm.donation.recorded`. The handler
notes time.time() minus the envelope's occur_time, which the unit of work stamps when the
event is written inside the transaction: a little before the commit, so the lag measured is,
if anything, too long.
"""

from __future__ import annotations

import asyncio
import math
import time

from givance.events.v1 import event_pb2

from chassis.consumer import Consumer
from chassis.db import Database, UnitOfWork, create_engine
from chassis.settings import ServiceSettings

QUEUE = "bench.event-lag"
BINDING = "crm.donation.recorded"


class LagProbe:
    def __init__(self) -> None:
        settings = ServiceSettings()
        self.db = Database(create_engine(settings.app_database_url("crm"), application_name="bench-lag"), "crm")
        self.consumer = Consumer(self.db, settings.rabbitmq_url, settings.events_exchange, QUEUE, [BINDING],
                                 self._on_event)
        self.lags_ms: list[float] = []

    async def _on_event(self, uow: UnitOfWork, event: event_pb2.Event) -> None:
        self.lags_ms.append((time.time() - event.occur_time.ToNanoseconds() / 1e9) * 1000)

    async def start(self) -> None:
        await self.consumer.start()

    async def stop(self) -> None:
        await self.consumer.stop()
        await self.db.dispose()

    async def wait_for(self, count: int, timeout: float) -> bool:
        """Until `count` events arrived (True) or `timeout` seconds passed (False)."""
        deadline = time.monotonic() + timeout
        while len(self.lags_ms) < count:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]
