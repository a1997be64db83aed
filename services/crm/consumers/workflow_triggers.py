"""Workflow triggers: crm's, identity's, comms' and billing's events -> executions to run.

Its own queue, so evaluating triggers never holds up another consumer; and it only writes rows
(new executions with their first step due, waits resumed): the steps run on the worker
(consumers/workflow_worker.py). The inbox makes a redelivered event start nothing twice, and an
execution is unique per workflow and event id besides.
"""

from __future__ import annotations

import importlib
import pkgutil

import givance.events.v1
from givance.events.v1 import event_pb2
from google.protobuf import json_format, symbol_database

from chassis.db import UnitOfWork
from services.crm.domain import workflow_definitions as definitions
from services.crm.handlers import workflow_runs

# Every publisher's payload types this build has (crm's, identity's, comms', billing's...), so a
# trigger's conditions can read any of them.
for _module in pkgutil.iter_modules(givance.events.v1.__path__):
    if _module.name.endswith("_events_pb2"):
        importlib.import_module(f"givance.events.v1.{_module.name}")

QUEUE = "crm.workflow_triggers"
BINDINGS = list(definitions.BINDINGS)


def payload_of(event: event_pb2.Event) -> dict:
    """The event's payload as JSON (field names as in the proto); {} for a type this build does not know."""
    try:
        cls = symbol_database.Default().GetSymbol(event.payload.TypeName())
    except KeyError:
        return {}
    msg = cls()
    if not event.payload.Unpack(msg):
        return {}
    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


async def on_event(uow: UnitOfWork, event: event_pb2.Event) -> None:
    await workflow_runs.on_event(uow, event.type, event.id, payload_of(event), workflow_runs.SYSTEM_CLOCK.now())
