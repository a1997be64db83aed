"""comms.generation_job.requested -> one donor's draft of an email generation session."""

from __future__ import annotations

from givance.events.v1 import comms_events_pb2, event_pb2

from chassis.db import UnitOfWork
from services.ai.handlers import email_jobs
from services.ai.handlers.deps import Deps

QUEUE = "ai.email-generation-jobs"
BINDINGS = ["comms.generation_job.requested"]


class Jobs:
    def __init__(self) -> None:
        self.deps: Deps | None = None

    async def handle(self, uow: UnitOfWork, event: event_pb2.Event) -> None:
        if self.deps is None:
            raise RuntimeError("ai's generation jobs run only in a built ai service")
        job = comms_events_pb2.GenerationJobRequestedEvent()
        event.payload.Unpack(job)
        await email_jobs.run(uow, self.deps, job.session_id, job.donor_id)


JOBS = Jobs()
