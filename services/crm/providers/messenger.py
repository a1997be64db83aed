"""Sending a templated message from a workflow step: the `Messenger` interface.

comms owns messages (templates, channels, suppression); a workflow's send_message step asks it
to send one. The request id is derived from the execution and the step, so a step run again
after a crash asks for the same message and comms sends it once.

- `RecordingMessenger`, the development default: sends nothing; it answers what it would have
  asked comms for, which the step records in the execution's log (saying it was not sent).
- `GrpcMessenger` (services/crm/providers/comms_messenger.py), when comms' SendMessage is available.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    tenant_id: uuid.UUID
    request_id: str
    template: str
    variables: dict[str, str]
    channel: str = "email"
    donor_id: str = ""  # to a donor (comms finds their address)...
    address: str = ""  # ...or to an address


@dataclass(frozen=True)
class Sent:
    message_id: str
    delivered: bool  # False: recorded only (the development default)
    provider: str
    extra: dict = field(default_factory=dict)


class MessageRefused(Exception):
    """The messenger could not send: `retryable` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


class Messenger(Protocol):
    async def send(self, message: Message) -> Sent: ...


class RecordingMessenger:
    """Development default: records, sends nothing (says so in the log and in the step's output)."""

    provider = "development: recorded in crm's workflow log, not sent"

    async def send(self, message: Message) -> Sent:
        log.info("workflow message %s (template %s, %s) recorded, not sent: no comms messenger configured",
                 message.request_id, message.template, message.channel)
        return Sent(message_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"givance:{message.request_id}")),
                    delivered=False, provider=self.provider)
