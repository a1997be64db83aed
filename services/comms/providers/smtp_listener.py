"""One small SMTP listener: aiosmtpd's SMTP protocol serving a handler on the running event loop,
as a worker (start/run/stop) beside the gRPC server. The development mail catcher (catcher.py)
and comms' inbound SMTP for unsubscribe mail (inbound.py) are each one of these with their own
handler. (aiosmtpd's controllers run a thread, or a loop of their own; this lives on the service's.)
"""

from __future__ import annotations

import asyncio
import logging

from aiosmtpd.smtp import SMTP

log = logging.getLogger(__name__)


class SmtpListener:
    """Serves `handler` (an aiosmtpd handler) on host:port; port 0 takes an ephemeral port,
    `port` says which once started."""

    def __init__(self, handler, host: str, port: int, *, hostname: str, max_message_bytes: int):
        self.handler = handler
        self.host, self.port = host, port
        self.hostname = hostname  # what the server calls itself in its greeting
        self.max_message_bytes = max_message_bytes
        self._server: asyncio.base_events.Server | None = None
        self._stopped = asyncio.Event()

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self.handler, hostname=self.hostname, data_size_limit=self.max_message_bytes,
                         enable_SMTPUTF8=True, decode_data=False),
            self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("%s: SMTP on %s:%d", self.hostname, self.host, self.port)
        return self.port

    async def run(self) -> None:
        if self._server is None:
            await self.start()
        await self._stopped.wait()

    async def stop(self) -> None:
        self._stopped.set()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
