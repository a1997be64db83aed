"""ai.research.requested -> the research job of one person_research version."""

from __future__ import annotations

import uuid

from givance.events.v1 import ai_events_pb2, event_pb2

from chassis.db import UnitOfWork
from services.ai.handlers import research
from services.ai.handlers.deps import Deps

QUEUE = "ai.research-jobs"
BINDINGS = ["ai.research.requested"]


class Jobs:
    def __init__(self) -> None:
        self.deps: Deps | None = None

    async def handle(self, uow: UnitOfWork, event: event_pb2.Event) -> None:
        if self.deps is None:
            raise RuntimeError("ai's research jobs run only in a built ai service")
        job = ai_events_pb2.DonorResearchRequestedEvent()
        event.payload.Unpack(job)
        await research.run(uow, self.deps, uuid.UUID(job.research_id))


JOBS = Jobs()
