"""Revocations: refuse, at once and on every service, access tokens that no longer stand.

Three kinds, all recorded by identity (table identity.revocations) and broadcast:
- a membership changed (`identity.membership.changed`: suspended, removed, role changed): the
  member's access tokens for that organization issued before `not_before` are refused; the
  member refreshes (if still a member) to get a token with the new rights;
- a session ended (`identity.session.revoked`: logout, RevokeSession, password reset or
  change, a refresh token used twice): the access tokens of that session (their "sid") issued
  before `not_before` are refused;
- an organization was suspended by a platform operator (`identity.organization.suspended`,
  ended by `identity.organization.reactivated`): every call for it is refused, whatever the
  token's age (FAILED_PRECONDITION, ORGANIZATION_SUSPENDED), from `not_before` (the suspension's
  start, which names it) until `expires_at` (its reactivation; infinity while it lasts). A
  service's scheduled work asks `suspended_organizations()` which tenants to leave waiting.

Every service process listens on its own exclusive queue (a broadcast). A broadcast is lost
while the process is not connected, and the list is memory: so the listener first binds its
queue, then lists what is in force (identity's RevocationService/ListRevocations, or identity's
own table), and lists again, from the last listing, whenever the broker connection comes back
and every `resync_seconds`. The service is not ready (health NOT_SERVING) until the first
listing is in. An entry is forgotten when the last token it refuses has expired (`expires_at`).
The per-call check is two dict lookups.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aio_pika
from givance.events.v1 import identity_events_pb2

from chassis import events
from chassis.context import Principal
from chassis.errors import FailedPrecondition, Unauthenticated

log = logging.getLogger(__name__)

ROUTING_KEY = "identity.membership.changed"
SESSION_ROUTING_KEY = "identity.session.revoked"
SUSPENDED_ROUTING_KEY = "identity.organization.suspended"
REACTIVATED_ROUTING_KEY = "identity.organization.reactivated"
MEMBERSHIP, SESSION, ORGANIZATION = "membership", "session", "organization"
SUSPENDED = "ORGANIZATION_SUSPENDED"
ERASED = "erased"  # an organization revocation's label (subject_id) once the organization is erased
# An entry whose expiry is unknown (an event from before expire_time existed) is kept this long.
DEFAULT_HORIZON = 86_400.0
# A listing from `since` also returns what was recorded this long before it: a revocation
# committed while the previous listing ran is not missed (identity's transactions are short).
OVERLAP_SECONDS = 120.0


@dataclass(frozen=True, slots=True)
class Revocation:
    # MEMBERSHIP (subject_id: user or service account), SESSION (sid), ORGANIZATION ("" or ERASED)
    kind: str
    organization_id: uuid.UUID
    subject_id: str
    not_before: float  # epoch seconds
    expires_at: float


# Lists the revocations in force recorded at or after `since` (all when None); returns them and
# the source's time of the listing.
RevocationSource = Callable[[float | None], Awaitable[tuple[list[Revocation], float]]]


# What the listener hears: routing key -> (RevocationList method, event payload).
_BROADCASTS = {
    ROUTING_KEY: ("apply", identity_events_pb2.MembershipChangedEvent),
    SESSION_ROUTING_KEY: ("apply_session", identity_events_pb2.SessionRevokedEvent),
    SUSPENDED_ROUTING_KEY: ("apply_suspended", identity_events_pb2.OrganizationSuspendedEvent),
    REACTIVATED_ROUTING_KEY: ("apply_reactivated", identity_events_pb2.OrganizationReactivatedEvent),
}


def _seconds(ts) -> float:
    return ts.seconds + ts.nanos / 1e9


class RevocationList:
    def __init__(self, horizon: float = DEFAULT_HORIZON) -> None:
        # How long a revocation matters when the source does not say: the access-token lifetime
        # (identity sets it from its settings) and a margin.
        self.horizon = horizon
        self._not_before: dict[tuple[str, uuid.UUID], float] = {}
        self._sessions: dict[str, float] = {}
        self._expiry: dict[tuple, float] = {}  # ("m", user, org) / ("s", sid) -> when to forget it
        # organization -> (suspended since, until, label): the latest suspension known, ended or not
        self._suspensions: dict[uuid.UUID, tuple[float, float, str]] = {}
        self.loaded = False  # the first listing is in (set by the listener)

    def revoke(self, user_id: str, org_id: uuid.UUID, not_before: float, expires_at: float | None = None) -> None:
        key = (user_id, org_id)
        self._not_before[key] = max(not_before, self._not_before.get(key, 0.0))
        self._keep(("m", user_id, org_id), not_before, expires_at)

    def revoke_session(self, session_id: str, not_before: float, expires_at: float | None = None) -> None:
        self._sessions[session_id] = max(not_before, self._sessions.get(session_id, 0.0))
        self._keep(("s", session_id), not_before, expires_at)

    def _keep(self, key: tuple, not_before: float, expires_at: float | None) -> None:
        until = expires_at if expires_at else not_before + self.horizon
        self._expiry[key] = max(until, self._expiry.get(key, 0.0))

    def suspend(self, org_id: uuid.UUID, since: float, until: float = math.inf, label: str = "") -> None:
        """The suspension that began at `since` lasts until `until` (a reactivation). A later
        suspension replaces an earlier one; of the same one the earlier end wins, so a broadcast
        and a listing may arrive in any order. `label` "erased": the organization is gone."""
        known = self._suspensions.get(org_id)
        if known is None or since > known[0] or (since == known[0] and until < known[1]):
            self._suspensions[org_id] = (since, until, label)

    def suspended(self, org_id: uuid.UUID, now: float | None = None) -> bool:
        known = self._suspensions.get(org_id)
        return known is not None and known[1] > (time.time() if now is None else now)

    def suspended_organizations(self) -> list[uuid.UUID]:
        """The organizations suspended now: their scheduled work waits (sends, workflow runs)."""
        now = time.time()
        return [org for org, (_, until, _) in self._suspensions.items() if until > now]

    def add(self, r: Revocation) -> None:
        if r.kind == ORGANIZATION:
            self.suspend(r.organization_id, r.not_before, r.expires_at, r.subject_id)
        elif r.kind == SESSION:
            self.revoke_session(r.subject_id, r.not_before, r.expires_at)
        else:
            self.revoke(r.subject_id, r.organization_id, r.not_before, r.expires_at)

    def prune(self, now: float | None = None) -> int:
        """Forgets the entries whose tokens have all expired."""
        now = time.time() if now is None else now
        gone = [k for k, until in self._expiry.items() if until < now]
        for k in gone:
            del self._expiry[k]
            if k[0] == "s":
                self._sessions.pop(k[1], None)
            else:
                self._not_before.pop((k[1], k[2]), None)
        ended = [org for org, (_, until, _) in self._suspensions.items() if until < now]
        for org in ended:
            del self._suspensions[org]
        return len(gone) + len(ended)

    def __len__(self) -> int:
        return len(self._expiry)

    async def check(self, principal: Principal) -> None:
        if principal.tenant_id in self._suspensions and self.suspended(principal.tenant_id):
            if self._suspensions[principal.tenant_id][2] == ERASED:
                raise FailedPrecondition("this organization was closed and erased", reason="ORGANIZATION_ERASED")
            raise FailedPrecondition("this organization is suspended by the platform's operators",
                                     reason=SUSPENDED, metadata={"organization_id": str(principal.tenant_id)})
        sid = principal.session_id
        if sid:
            nb = self._sessions.get(sid)
            if nb is not None and principal.issued_at < nb:
                raise Unauthenticated("this session has ended; sign in again", reason="SESSION_REVOKED")
        nb = self._not_before.get((principal.subject, principal.tenant_id))
        if nb is not None and principal.issued_at < nb:
            raise Unauthenticated("this token was revoked: the membership changed; sign in again",
                                  reason="TOKEN_REVOKED")

    async def is_loaded(self) -> bool:
        """Readiness: a verifier that has not listed the revocations would accept revoked tokens."""
        return self.loaded

    def apply(self, event: identity_events_pb2.MembershipChangedEvent) -> None:
        self.revoke(event.user_id, uuid.UUID(event.organization_id), _seconds(event.not_before),
                    _seconds(event.expire_time) if event.HasField("expire_time") else None)

    def apply_session(self, event: identity_events_pb2.SessionRevokedEvent) -> None:
        self.revoke_session(event.session_id, _seconds(event.not_before),
                            _seconds(event.expire_time) if event.HasField("expire_time") else None)

    def apply_suspended(self, event: identity_events_pb2.OrganizationSuspendedEvent) -> None:
        self.suspend(uuid.UUID(event.organization_id), _seconds(event.suspend_time))

    def apply_reactivated(self, event: identity_events_pb2.OrganizationReactivatedEvent) -> None:
        self.suspend(uuid.UUID(event.organization_id), _seconds(event.suspend_time),
                     _seconds(event.reactivate_time))


class RevocationListener:
    """Feeds a RevocationList from the bus (one exclusive, auto-deleted queue per process) and
    from `source` (at start, after every reconnect, and every `resync_seconds`)."""

    def __init__(self, amqp_url: str, exchange: str, revocations: RevocationList,
                 source: RevocationSource | None = None, resync_seconds: float = 60.0):
        self.amqp_url = amqp_url
        self.exchange = exchange
        self.revocations = revocations
        self.source = source
        self.resync_seconds = resync_seconds
        self._conn: aio_pika.abc.AbstractRobustConnection | None = None
        self._since: float | None = None
        self._catch_up: asyncio.Task | None = None
        self._sync_lock = asyncio.Lock()
        self.ready = asyncio.Event()
        self.syncs = 0  # listings applied (tests and metrics)

    async def run(self) -> None:
        await self._connect()
        await self._sync_until_done()
        self.ready.set()
        while True:  # a safety net: a missed broadcast is caught up within resync_seconds anyway
            await asyncio.sleep(self.resync_seconds)
            await self._sync_until_done()

    async def _connect(self) -> None:
        delay = 0.2
        while True:
            try:
                self._conn = await aio_pika.connect_robust(self.amqp_url, timeout=5)
                channel = await self._conn.channel()
                ex = await channel.declare_exchange(self.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
                queue = await channel.declare_queue(exclusive=True, auto_delete=True)
                for key in _BROADCASTS:
                    await queue.bind(ex, routing_key=key)
                await queue.consume(self._on_message, no_ack=True)
                # The robust connection re-declares the queue after a reconnect; what was broadcast
                # meanwhile is listed again from the source.
                self._conn.reconnect_callbacks.add(self._on_reconnect)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - broker down: retry
                log.warning("revocation listener: %s; retrying in %.1fs", exc, delay)
                await self.stop()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _on_reconnect(self, *_args) -> None:
        if self._catch_up is None or self._catch_up.done():
            self._catch_up = asyncio.get_running_loop().create_task(self._sync_until_done())

    async def sync(self) -> None:
        """One listing from the source, applied (from the last listing, with an overlap)."""
        if self.source is None:
            self.revocations.loaded = True
            return
        async with self._sync_lock:
            found, listed_at = await self.source(self._since)
            for r in found:
                self.revocations.add(r)
            self.revocations.prune()
            self._since = listed_at - OVERLAP_SECONDS
            self.revocations.loaded = True
            self.syncs += 1

    async def _sync_until_done(self) -> None:
        delay = 0.2
        while True:
            try:
                await self.sync()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - identity unreachable: retry
                log.warning("revocation listener: listing the revocations failed: %s; retrying in %.1fs",
                            exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def connected(self) -> bool:
        """Readiness: the broadcast reaches this process only while the broker connection is up."""
        return self.ready.is_set() and self._conn is not None and not self._conn.is_closed

    async def _on_message(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        try:
            env = events.parse(message.body)
            apply, payload = _BROADCASTS[message.routing_key or ""]
            getattr(self.revocations, apply)(events.unpack(env, payload))
        except Exception as exc:  # noqa: BLE001 - a malformed broadcast must not stop the listener
            log.error("revocation listener: bad message %s: %s", message.message_id, exc)

    async def stop(self) -> None:
        if self._catch_up is not None:
            self._catch_up.cancel()
            self._catch_up = None
        if self._conn is not None:
            await self._conn.close()
            self._conn = None


def identity_revocation_source(address: str) -> RevocationSource:
    """List the revocations from identity's RevocationService over gRPC (one channel, reused)."""
    import grpc
    from givance.identity.v1 import revocation_service_pb2 as pb
    from givance.identity.v1 import revocation_service_pb2_grpc

    channel: grpc.aio.Channel | None = None
    kinds = {pb.Revocation.KIND_MEMBERSHIP: MEMBERSHIP, pb.Revocation.KIND_SESSION: SESSION,
             pb.Revocation.KIND_ORGANIZATION: ORGANIZATION}

    async def source(since: float | None) -> tuple[list[Revocation], float]:
        nonlocal channel
        if channel is None:
            channel = grpc.aio.insecure_channel(address)
        request = pb.ListRevocationsRequest()
        if since is not None:
            request.since.FromNanoseconds(int(since * 1e9))
        stub = revocation_service_pb2_grpc.RevocationServiceStub(channel)
        resp = await stub.ListRevocations(request, timeout=10)
        found = [Revocation(kinds[r.kind], uuid.UUID(r.organization_id), r.subject_id, _seconds(r.not_before),
                            _seconds(r.expire_time) if r.HasField("expire_time") else math.inf)
                 for r in resp.revocations if r.kind in kinds]
        return found, _seconds(resp.list_time)

    return source
