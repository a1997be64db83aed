"""Membership revocations: refuse, at once, tokens of a member whose rights changed.

identity publishes `identity.membership.changed` when a member is suspended, removed or
has their role changed; every service process listens on its own exclusive queue (a
broadcast) and refuses that member's access tokens for that organization issued before
`not_before`. The member refreshes (if still a member) to get a token with the new rights.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

import aio_pika
from givance.events.v1 import identity_events_pb2

from chassis import events
from chassis.context import Principal
from chassis.errors import Unauthenticated

log = logging.getLogger(__name__)

ROUTING_KEY = "identity.membership.changed"


class RevocationList:
    def __init__(self) -> None:
        self._not_before: dict[tuple[str, uuid.UUID], float] = {}

    def revoke(self, user_id: str, org_id: uuid.UUID, not_before: float) -> None:
        key = (user_id, org_id)
        self._not_before[key] = max(not_before, self._not_before.get(key, 0.0))

    async def check(self, principal: Principal) -> None:
        nb = self._not_before.get((principal.subject, principal.tenant_id))
        if nb is not None and principal.issued_at < nb:
            raise Unauthenticated("this token was revoked: the membership changed; sign in again",
                                  reason="TOKEN_REVOKED")

    def apply(self, event: identity_events_pb2.MembershipChangedEvent) -> None:
        self.revoke(event.user_id, uuid.UUID(event.organization_id), event.not_before.ToSeconds()
                    + event.not_before.nanos / 1e9)


class RevocationListener:
    """Feeds a RevocationList from the bus (one exclusive, auto-deleted queue per process)."""

    def __init__(self, amqp_url: str, exchange: str, revocations: RevocationList):
        self.amqp_url = amqp_url
        self.exchange = exchange
        self.revocations = revocations
        self._conn: aio_pika.abc.AbstractRobustConnection | None = None
        self.ready = asyncio.Event()

    async def run(self) -> None:
        delay = 0.2
        while True:
            try:
                self._conn = await aio_pika.connect_robust(self.amqp_url, timeout=5)
                channel = await self._conn.channel()
                ex = await channel.declare_exchange(self.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
                queue = await channel.declare_queue(exclusive=True, auto_delete=True)
                await queue.bind(ex, routing_key=ROUTING_KEY)
                await queue.consume(self._on_message, no_ack=True)
                self.ready.set()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - broker down: retry
                log.warning("revocation listener: %s; retrying in %.1fs", exc, delay)
                await self.stop()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _on_message(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        try:
            env = events.parse(message.body)
            self.revocations.apply(events.unpack(env, identity_events_pb2.MembershipChangedEvent))
        except Exception as exc:  # noqa: BLE001 - a malformed broadcast must not stop the listener
            log.error("revocation listener: bad message %s: %s", message.message_id, exc)

    async def stop(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
