"""comms.whatsapp.message_received -> the WhatsApp assistant's answer (handlers/whatsapp.py)."""

from __future__ import annotations

from givance.events.v1 import comms_events_pb2, event_pb2

from chassis import events
from chassis.db import UnitOfWork
from services.ai.handlers import whatsapp
from services.ai.handlers.deps import Deps

QUEUE = "ai.whatsapp-assistant"
BINDINGS = ["comms.whatsapp.message_received"]


class Assistant:
    def __init__(self) -> None:
        self.deps: Deps | None = None

    async def handle(self, uow: UnitOfWork, event: event_pb2.Event) -> None:
        if self.deps is None:
            raise RuntimeError("ai's WhatsApp assistant runs only in a built ai service")
        m = events.unpack(event, comms_events_pb2.WhatsAppMessageReceivedEvent)
        await whatsapp.answer(uow, self.deps, m.webhook_event_id, m.from_phone, m.text)


ASSISTANT = Assistant()
