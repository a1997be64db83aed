"""comms.communication.logged -> the donor's last_contact_time (the latest contact wins; an older
one arriving late changes nothing). A donor deleted or merged away is left as it is."""

from __future__ import annotations

import uuid
from datetime import UTC

from givance.events.v1 import comms_events_pb2, event_pb2

from chassis import events
from chassis.db import UnitOfWork
from services.crm.handlers.donors import record_contact

QUEUE = "crm.donor-contacts"
COMMUNICATION_LOGGED = "comms.communication.logged"
BINDINGS = [COMMUNICATION_LOGGED]


async def on_communication_logged(uow: UnitOfWork, event: event_pb2.Event) -> None:
    logged = events.unpack(event, comms_events_pb2.CommunicationLoggedEvent)
    try:
        donor = uuid.UUID(logged.donor_id)
    except ValueError:
        return
    await record_contact(uow, donor, logged.occur_time.ToDatetime(tzinfo=UTC))
