"""The send queue's worker: claims due jobs (comms.send_jobs, FOR UPDATE SKIP LOCKED, leased so a
crashed sender's jobs come back), sends each through its provider outside any transaction, and
records the outcome in the message's tenant unit of work:

- accepted: SENT, `comms.email.sent`, and a communications-log entry for a donor;
- transient failure (SMTP 4xx, timeout, connection trouble): retried with exponential back-off
  until `send_max_attempts`, then FAILED;
- permanent failure (5xx): BOUNCED, the address suppressed (hard bounce), `comms.email.bounced`;
- the organization's send rate spent: the job waits for its bucket to refill;
- the organization suspended (deps.paused): its jobs are not claimed; they wait, due, and go
  out after its reactivation.

Several replicas may run it: a job is claimed by one at a time. It wakes on `deps.kick` (set
by this process' own enqueues) and polls otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from datetime import UTC, datetime

from givance.events.v1 import comms_events_pb2

from chassis import faults
from chassis.convert import timestamp
from services.comms.domain import messages as rules
from services.comms.domain.delivery import (
    Dkim,
    OutgoingEmail,
    PermanentFailure,
    TransientFailure,
    domain_of,
    envelope_address,
    format_sender,
)
from services.comms.domain.tracking import UNSUBSCRIBE, TokenClaims
from services.comms.handlers.communications import log_sent
from services.comms.handlers.deps import Deps
from services.comms.handlers.messages import body_aad, unsubscribe_url
from services.comms.store import messages as store
from services.comms.store import settings as settings_store
from services.comms.store import suppressions as suppressions_store
from services.comms.store.messages import MessageRow

log = logging.getLogger(__name__)

LEASE_SECONDS = 120.0
IDLE_POLL_SECONDS = 0.5
RATE_WAIT_SECONDS = 1.0


def dkim_aad(org: uuid.UUID) -> bytes:
    return f"comms.settings.dkim:{org}".encode()


class Sender:
    def __init__(self, deps: Deps, *, concurrency: int = 8):
        self.deps = deps
        self.concurrency = concurrency
        self._stopping = asyncio.Event()
        self.sent = 0

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                claimed = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not faults.is_transient(exc):
                    log.exception("sender: claiming jobs failed")
                await asyncio.sleep(1.0)
                continue
            if claimed == 0:
                self.deps.kick.clear()
                try:
                    await asyncio.wait_for(self.deps.kick.wait(), IDLE_POLL_SECONDS)
                except TimeoutError:
                    pass

    async def stop(self) -> None:
        self._stopping.set()
        self.deps.kick.set()

    async def run_once(self) -> int:
        """Claims and sends one batch of due jobs; returns how many it claimed."""
        async with self.deps.db.unit_of_work(None) as uow:
            jobs = await store.claim(uow.conn, self.deps.settings.send_batch, LEASE_SECONDS, self.deps.paused())
        if not jobs:
            return 0
        by_org: dict[uuid.UUID, list[dict]] = defaultdict(list)
        for job in jobs:
            by_org[job["tenant_id"]].append(job)
        await asyncio.gather(*(self._batch(org, org_jobs) for org, org_jobs in by_org.items()))
        return len(jobs)

    async def _batch(self, org: uuid.UUID, jobs: list[dict]) -> None:
        """One organization's claimed jobs: read together, their send tokens taken together, sent
        (at most `concurrency` at once), and the sent ones recorded together. A job that fails
        here keeps its lease and comes back when it ends."""
        try:
            ready, sending = await self._prepare(org, jobs)
            if not ready:
                return
            slots = asyncio.Semaphore(self.concurrency)

            async def one(msg: MessageRow, attempts: int) -> tuple[MessageRow, int] | None:
                async with slots:
                    try:
                        return await self._send(org, msg, attempts, sending)
                    except Exception:
                        log.exception("sender: message %s could not be processed", msg.id)
                        return None

            sent = [done for done in await asyncio.gather(*(one(m, a) for m, a in ready)) if done is not None]
            if sent:
                await self._record_sent(org, sent)
        except Exception:
            log.exception("sender: %d messages of organization %s could not be processed", len(jobs), org)

    async def _prepare(self, org: uuid.UUID, jobs: list[dict]) -> tuple[list[tuple[MessageRow, int]], dict | None]:
        """The queued messages of `jobs` that the organization's send rate lets go now (with their
        attempts so far), and its sending settings; the others' jobs done (no longer queued) or
        put back until the bucket refills."""
        attempts = {j["message_id"]: j["attempts"] for j in jobs}
        async with self.deps.db.unit_of_work(org) as uow:
            messages = await store.to_send(uow.conn, org, list(attempts))
            queued = [m for m in messages if m.status == "queued"]
            await store.finish_jobs(uow.conn, [m for m in attempts if m not in {q.id for q in queued}])
            if not queued:
                return [], None
            granted, sending = await settings_store.take_send_tokens(uow.conn, org, len(queued))
            await store.retry_jobs(uow.conn, [(m.id, attempts[m.id]) for m in queued[granted:]], RATE_WAIT_SECONDS)
        return [(m, attempts[m.id]) for m in queued[:granted]], sending

    async def _send(self, org: uuid.UUID, msg: MessageRow, attempts: int,
                    sending: dict) -> tuple[MessageRow, int] | None:
        """Through the provider, outside any transaction: (the message, its attempts) once accepted;
        None when it failed (its retry or bounce is recorded here)."""
        deps = self.deps
        try:
            if msg.channel == "email":
                await deps.email.send(self._email(org, msg, sending))
            else:
                await deps.sms.send(msg.channel, msg.to_address, self._open(msg, msg.body_text))
        except TransientFailure as exc:
            await self._transient(org, msg, attempts + 1, str(exc))
            return None
        except PermanentFailure as exc:
            await self._bounced(org, msg, attempts + 1, str(exc))
            return None
        return msg, attempts + 1

    async def _record_sent(self, org: uuid.UUID, sent: list[tuple[MessageRow, int]]) -> None:
        """SENT, `comms.email.sent` and a donor's communications-log entry, for every accepted
        message of the batch in one unit of work."""
        now = datetime.now(UTC)
        async with self.deps.db.unit_of_work(org) as uow:
            await store.mark_sent_many(uow.conn, org, [(msg.id, attempts) for msg, attempts in sent])
            for msg, _ in sent:
                if msg.channel == "email":
                    uow.publish(rules.EMAIL_SENT, comms_events_pb2.EmailSentEvent(
                        message_id=str(msg.id), donor_id=str(msg.donor_id or ""), template_name=msg.template_name,
                        category=msg.category, send_time=timestamp(now)), aggregate_type="message",
                        aggregate_id=str(msg.id))
                if msg.donor_id is not None:
                    await log_sent(uow, org, msg, now)
        self.sent += len(sent)

    def _open(self, msg: MessageRow, value: str) -> str:
        if not msg.sealed or not value:
            return value
        return self.deps.keyring.open(value, body_aad(msg.id)).decode()

    def _email(self, org: uuid.UUID, msg: MessageRow, sending: dict) -> OutgoingEmail:
        deps = self.deps
        address = sending["from_address"] or envelope_address(deps.settings.default_from)
        sender = (format_sender(sending["from_name"], address) if sending["from_name"]
                  else sending["from_address"] or deps.settings.default_from)
        headers: dict[str, str] = {}
        if msg.bulk:
            url = unsubscribe_url(deps, org, msg.id)
            domain = deps.settings.unsubscribe_domain or domain_of(sender)
            mailto = f"unsubscribe+{deps.signer.sign_address(TokenClaims(UNSUBSCRIBE, org, msg.id))}@{domain}"
            headers["List-Unsubscribe"] = f"<{url}>, <mailto:{mailto}?subject=unsubscribe>"
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        key = None
        if sending["dkim_key_sealed"] and sending["dkim_domain"] and sending["dkim_selector"]:
            key = Dkim(sending["dkim_domain"], sending["dkim_selector"],
                       deps.keyring.open(sending["dkim_key_sealed"], dkim_aad(org)))
        attachments = []
        if msg.attachment_name and msg.attachment is not None:
            attachments.append((msg.attachment_name, "application/pdf", bytes(msg.attachment)))
        return OutgoingEmail(sender=sender, to=msg.to_address, subject=msg.subject,
                             text=self._open(msg, msg.body_text), html=self._open(msg, msg.body_html),
                             message_id=msg.rfc822_message_id, reply_to=sending["reply_to"], headers=headers,
                             attachments=attachments, dkim=key)

    async def _transient(self, org: uuid.UUID, msg: MessageRow, attempts: int, reason: str) -> None:
        s = self.deps.settings
        async with self.deps.db.unit_of_work(org) as uow:
            if attempts >= s.send_max_attempts:
                await store.set_status(uow.conn, org, msg.id, "failed", reason, attempts=attempts)
                await store.finish_job(uow.conn, msg.id)
                log.warning("sender: message %s failed after %d attempts: %s", msg.id, attempts, reason)
                return
            await store.set_status(uow.conn, org, msg.id, "queued", reason, attempts=attempts)
            await store.retry_job(uow.conn, msg.id, attempts, rules.backoff(attempts, s.send_backoff_seconds))

    async def _bounced(self, org: uuid.UUID, msg: MessageRow, attempts: int, reason: str) -> None:
        async with self.deps.db.unit_of_work(org) as uow:
            await record_bounce(uow, org, msg, reason, permanent=True, attempts=attempts)
            await store.finish_job(uow.conn, msg.id)


async def record_bounce(uow, org: uuid.UUID, msg: MessageRow, reason: str, *, permanent: bool,
                        attempts: int | None = None, webhook_event_id: uuid.UUID | None = None) -> bool:
    """A bounce (the SMTP answer or a provider's webhook): BOUNCED, the address suppressed when
    permanent, `comms.email.bounced`. Nothing when this provider event was applied already."""
    if not await store.add_event(uow.conn, org, msg.id, "bounced", detail=reason, webhook_event_id=webhook_event_id):
        return False
    await store.set_status(uow.conn, org, msg.id, "bounced", reason, attempts=attempts)
    if permanent:
        await suppressions_store.add(uow.conn, org, msg.to_address, "hard_bounce", reason[:1000])
    uow.publish(rules.EMAIL_BOUNCED, comms_events_pb2.EmailBouncedEvent(
        message_id=str(msg.id), donor_id=str(msg.donor_id or ""), permanent=permanent, reason=reason[:1000],
        address=msg.to_address),
        aggregate_type="message", aggregate_id=str(msg.id))
    return True


