"""Inbound SMTP for comms' own addresses: the mailto in every bulk email's List-Unsubscribe
(`unsubscribe+<token>@<domain>`). A message to such an address is handed to `on_unsubscribe`
with the token (it verifies it and unsubscribes that recipient); nothing else is accepted.

`COMMS_INBOUND_SMTP_PORT` runs it as a server (point the unsubscribe domain's MX at it); in
development the mail catcher on 127.0.0.1:1025 hands such messages over the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiosmtpd.smtp import SMTP, Envelope, Session

from services.comms.providers.smtp_listener import SmtpListener

log = logging.getLogger(__name__)

PREFIX = "unsubscribe+"
MAX_MESSAGE_BYTES = 256 * 1024

OnUnsubscribe = Callable[[str], Awaitable[bool]]


def unsubscribe_token(address: str) -> str | None:
    """The token of `unsubscribe+<token>@domain`, else None."""
    local, at, _ = address.strip().strip("<>").rpartition("@")
    if not at or not local.lower().startswith(PREFIX):
        return None
    token = local[len(PREFIX):]
    return token if 0 < len(token) <= 200 else None


async def deliver_unsubscribes(on_unsubscribe: OnUnsubscribe, recipients: list[str]) -> int:
    """Hands each unsubscribe address' token over; how many were honoured."""
    done = 0
    for rcpt in recipients:
        token = unsubscribe_token(rcpt)
        if token is None:
            continue
        try:
            done += bool(await on_unsubscribe(token))
        except Exception:
            log.exception("inbound: an unsubscribe by mail could not be applied")
    return done


class InboundHandler:
    """aiosmtpd handler: only comms' unsubscribe addresses; anything else is refused (no relay)."""

    def __init__(self, on_unsubscribe: OnUnsubscribe):
        self.on_unsubscribe = on_unsubscribe
        self.handled = 0

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if unsubscribe_token(address) is None:
            return "550 5.1.1 No such user here (only unsubscribe addresses)"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.handled += await deliver_unsubscribes(self.on_unsubscribe, list(envelope.rcpt_tos))
        return "250 Unsubscribe request received"


class InboundSmtp(SmtpListener):
    """InboundHandler as a worker (run/stop) on host:port (0: an ephemeral port, `port` after start)."""

    def __init__(self, on_unsubscribe: OnUnsubscribe, host: str = "127.0.0.1", port: int = 0):
        super().__init__(InboundHandler(on_unsubscribe), host, port, hostname="givance-comms-inbound",
                         max_message_bytes=MAX_MESSAGE_BYTES)
