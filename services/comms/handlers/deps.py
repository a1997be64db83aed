"""What comms' use cases are given (built once in __main__.py): the database, settings, the
providers, the keys."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from chassis.crypto import Keyring
from chassis.db import Database
from services.comms.domain.delivery import OutgoingEmail
from services.comms.domain.tracking import Signer


class EmailProvider(Protocol):
    async def send(self, email: OutgoingEmail) -> None: ...

    async def close(self) -> None: ...


class SmsProvider(Protocol):
    async def send(self, channel: str, to: str, text: str) -> str: ...

    async def close(self) -> None: ...


@dataclass
class Deps:
    db: Database
    settings: Any  # CommsSettings
    email: EmailProvider
    sms: SmsProvider
    crm: Any  # providers.crm.CrmClient
    keyring: Keyring  # seals DKIM keys and sensitive bodies at rest
    event_keys: Keyring  # opens what identity sealed for comms
    signer: Signer  # tracking and unsubscribe tokens
    pdf: Any = None  # providers.pdf: receipt(...) -> bytes
    whatsapp: Any = None  # providers.whatsapp: send_text(to, text, reply_to) -> the message's id
    # async (organization id) -> gRPC metadata acting for it with comms' own tenant token
    # (chassis.tenant_tokens.TenantTokens.metadata), for consumers with no caller; None: no principal.
    tenant_metadata: Any = None
    kick: asyncio.Event = field(default_factory=asyncio.Event)  # wakes the sender
    # () -> the organizations whose sends wait: suspended (chassis.revocation), set by __main__
    paused: Callable[[], list] = list
    # session id -> what wakes this process' watchers of a generation session's progress
    progress: dict[Any, asyncio.Event] = field(default_factory=dict)
