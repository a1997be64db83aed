"""Workflow triggers: the catalogued events (crm's own, identity's, comms', billing's:
handlers/workflow_events.py) -> executions to run.

Its own queue, bound to every event type of the catalog, so evaluating triggers never holds up
another consumer; and it only writes rows (new executions with their first step due, waits
resumed): the steps run on the worker (consumers/workflow_worker.py). The inbox makes a
redelivered event start nothing twice, and an execution is unique per workflow and event id besides.
"""

from __future__ import annotations

from givance.events.v1 import event_pb2

from chassis.db import UnitOfWork
from services.crm.handlers import workflow_events, workflow_runs

QUEUE = "crm.workflow_triggers"
BINDINGS = workflow_events.CATALOG.bindings()


async def on_event(uow: UnitOfWork, event: event_pb2.Event) -> None:
    payload = workflow_events.payload_json(event.type, event.payload)
    await workflow_runs.on_event(uow, event.type, event.id, payload, workflow_runs.SYSTEM_CLOCK.now())
