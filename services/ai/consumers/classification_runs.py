"""ai.classification.batch_requested -> one batch of a classification run."""

from __future__ import annotations

from givance.events.v1 import ai_events_pb2, event_pb2

from chassis import events
from chassis.db import UnitOfWork
from services.ai.handlers import classification_runs
from services.ai.handlers.deps import Deps

QUEUE = "ai.classification-runs"
BINDINGS = [classification_runs.BATCH_REQUESTED]


class Batches:
    def __init__(self) -> None:
        self.deps: Deps | None = None

    async def handle(self, uow: UnitOfWork, event: event_pb2.Event) -> None:
        if self.deps is None:
            raise RuntimeError("ai's classification runs run only in a built ai service")
        batch = events.unpack(event, ai_events_pb2.ClassificationBatchRequestedEvent)
        await classification_runs.run_batch(uow, self.deps, batch.run_id, batch.cursor)


BATCHES = Batches()
