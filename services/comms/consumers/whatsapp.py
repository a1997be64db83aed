"""ai.whatsapp.reply_requested -> the assistant's answer sent to the staff member on WhatsApp."""

from __future__ import annotations

from givance.events.v1 import ai_events_pb2, event_pb2

from chassis import events
from chassis.db import UnitOfWork
from services.comms.consumers.bound import Bound
from services.comms.domain.messages import WHATSAPP_REPLY_REQUESTED
from services.comms.handlers import whatsapp

QUEUE = "comms.whatsapp-replies"
BINDINGS = [WHATSAPP_REPLY_REQUESTED]


class Replies(Bound):
    async def __call__(self, uow: UnitOfWork, event: event_pb2.Event) -> None:
        r = events.unpack(event, ai_events_pb2.WhatsAppReplyRequestedEvent)
        await whatsapp.reply(uow, self.deps_for(uow), r.to_phone, r.text, r.inbound_message_id)


on_reply_requested = Replies()
