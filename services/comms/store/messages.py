"""comms.messages and what hangs off them: the send queue (comms.send_jobs), tracked links and
email events."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chassis import sql
from chassis.db import Connection
from chassis.sql import Where

# Opens and clicks by people are counted from the events when read: a click never waits on a lock of
# its message's row (a popular link's clicks would queue behind one another).
_PEOPLE = ("(SELECT count(*) FROM comms.email_events e WHERE e.organization_id = comms.messages.organization_id "
           "AND e.message_id = comms.messages.id AND e.kind = '{kind}' AND NOT e.machine)")
LIST_COLUMNS = ("id, organization_id, channel, donor_id, to_address, template_name, template_version, category, "
                "bulk, subject, status, status_reason, attempt_count, rfc822_message_id, scheduled_at, sent_at, "
                f"{_PEOPLE.format(kind='opened')} AS open_count, {_PEOPLE.format(kind='clicked')} AS click_count, "
                "created_at")
FULL_COLUMNS = LIST_COLUMNS + ", body_text, body_html, attachment_name, attachment, created_by, sealed"
# What the sender reads: the full row, without counting opens and clicks nobody looks at there.
SEND_COLUMNS = FULL_COLUMNS.replace(f"{_PEOPLE.format(kind='opened')} AS open_count", "0").replace(
    f"{_PEOPLE.format(kind='clicked')} AS click_count", "0")


@dataclass(slots=True)
class MessageRow:
    id: uuid.UUID
    organization_id: uuid.UUID
    channel: str
    donor_id: uuid.UUID | None
    to_address: str
    template_name: str
    template_version: int
    category: str
    bulk: bool
    subject: str
    status: str
    status_reason: str
    attempt_count: int
    rfc822_message_id: str
    scheduled_at: datetime
    sent_at: datetime | None
    open_count: int
    click_count: int
    created_at: datetime
    body_text: str = ""
    body_html: str = ""
    attachment_name: str | None = None
    attachment: bytes | None = None
    created_by: uuid.UUID | None = None
    sealed: bool = False


def _row(r: Any) -> MessageRow:
    return MessageRow(*r)


async def insert(conn: Connection, values: dict[str, Any]) -> bool:
    """False when its request id or source key was used already (nothing inserted)."""
    cols = ", ".join(values)
    result = await conn.execute(
        f"INSERT INTO comms.messages ({cols}) VALUES ({', '.join(':' + c for c in values)}) ON CONFLICT DO NOTHING",
        values)
    return result.rowcount == 1


async def id_by_request_id(conn: Connection, org: uuid.UUID, request_id: str) -> uuid.UUID | None:
    return await sql.id_by_request_id(conn, "comms.messages", org, request_id)


async def id_by_source_key(conn: Connection, org: uuid.UUID, key: str) -> uuid.UUID | None:
    return (await conn.execute("SELECT id FROM comms.messages WHERE organization_id = :org AND source_key = :k",
                               {"org": org, "k": key})).scalar()


async def get(conn: Connection, org: uuid.UUID, message_id: uuid.UUID, *, full: bool = False,
              for_update: bool = False) -> MessageRow | None:
    return await sql.by_id(conn, f"SELECT {FULL_COLUMNS if full else LIST_COLUMNS} FROM comms.messages", org,
                           message_id, _row, for_update=for_update)


async def to_send(conn: Connection, org: uuid.UUID, message_ids: list[uuid.UUID]) -> list[MessageRow]:
    """The sender's batch of one organization's messages, whole, in one read."""
    return await sql.every(conn, f"SELECT {SEND_COLUMNS} FROM comms.messages WHERE organization_id = :org "
                                 "AND id = ANY(CAST(:ids AS uuid[]))", {"org": org, "ids": message_ids}, _row)


async def page(conn: Connection, org: uuid.UUID, *, donor_id: uuid.UUID | None, status: str | None,
               after: list[Any] | None, limit: int) -> list[MessageRow]:
    where = Where("organization_id = :org", org=org, limit=limit)
    where.filter("donor_id = :donor", donor=donor_id).filter("status = :status", status=status)
    where.keyset("(created_at, id) <", after)
    return await sql.every(conn, f"SELECT {LIST_COLUMNS} FROM comms.messages WHERE {where} "
                                 "ORDER BY created_at DESC, id DESC LIMIT :limit", where.params, _row)


async def set_status(conn: Connection, org: uuid.UUID, message_id: uuid.UUID, status: str, reason: str = "",
                     *, sent: bool = False, attempts: int | None = None) -> None:
    await conn.execute(
        "UPDATE comms.messages SET status = :status, status_reason = :reason, version = version + 1, "
        "updated_at = now(), attempt_count = COALESCE(:attempts, attempt_count)"
        f"{', sent_at = now()' if sent else ''} WHERE organization_id = :org AND id = :id",
        {"status": status, "reason": reason[:1000], "org": org, "id": message_id, "attempts": attempts})
    if status in ("failed", "bounced"):  # a generated email it carries failed with it
        await conn.execute(
            "UPDATE comms.generated_emails SET status = 'failed', status_reason = :reason, version = version + 1, "
            "updated_at = now() WHERE organization_id = :org AND message_id = :id AND status IN ('scheduled', 'sent')",
            {"reason": reason[:1000], "org": org, "id": message_id})


async def mark_sent_many(conn: Connection, org: uuid.UUID, sent: list[tuple[uuid.UUID, int]]) -> None:
    """SENT (with its attempts), a 'sent' event and its job done, for several messages (id, attempts),
    in one statement; the generated email (AI session) each carries, if any, is sent with it."""
    await conn.execute(
        "WITH s AS (SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:attempts AS int[])) AS s(id, attempts)), "
        "m AS (UPDATE comms.messages SET status = 'sent', status_reason = '', sent_at = now(), "
        "  attempt_count = s.attempts, version = version + 1, updated_at = now() FROM s "
        "  WHERE organization_id = :org AND comms.messages.id = s.id RETURNING comms.messages.id), "
        "e AS (INSERT INTO comms.email_events (id, organization_id, message_id, kind) "
        "  SELECT gen_random_uuid(), :org, id, 'sent' FROM m), "
        "g AS (UPDATE comms.generated_emails SET status = 'sent', sent_at = now(), version = version + 1, "
        "  updated_at = now() WHERE organization_id = :org AND message_id IN (SELECT id FROM s) "
        "  AND status = 'scheduled') "
        "DELETE FROM comms.send_jobs WHERE message_id IN (SELECT id FROM s)",
        {"org": org, "ids": [m for m, _ in sent], "attempts": [a for _, a in sent]})


# -- the send queue --------------------------------------------------------------------------


async def enqueue(conn: Connection, org: uuid.UUID, message_id: uuid.UUID, due_at: datetime | None) -> None:
    await conn.execute(
        "INSERT INTO comms.send_jobs (message_id, tenant_id, due_at) VALUES (:m, :t, COALESCE(:due, now())) "
        "ON CONFLICT DO NOTHING", {"m": message_id, "t": org, "due": due_at})


async def claim(conn: Connection, limit: int, lease_seconds: float,
                paused: list[uuid.UUID] | None = None) -> list[dict[str, Any]]:
    """Due jobs no other sender holds, leased for `lease_seconds` (a sender that dies mid-send
    leaves its jobs to be claimed again when the lease ends); the `paused` tenants' jobs
    (suspended organizations) stay, due."""
    return await sql.every(
        conn,
        "UPDATE comms.send_jobs j SET locked_until = now() + make_interval(secs => :lease), updated_at = now() "
        "FROM (SELECT message_id FROM comms.send_jobs WHERE due_at <= now() "
        "      AND (locked_until IS NULL OR locked_until < now()) AND tenant_id <> ALL(CAST(:paused AS uuid[])) "
        "      ORDER BY due_at LIMIT :limit FOR UPDATE SKIP LOCKED) due "
        "WHERE j.message_id = due.message_id RETURNING j.message_id, j.tenant_id, j.attempts",
        {"lease": lease_seconds, "limit": limit, "paused": list(paused or ())})


async def finish_job(conn: Connection, message_id: uuid.UUID) -> None:
    await conn.execute("DELETE FROM comms.send_jobs WHERE message_id = :m", {"m": message_id})


async def finish_jobs(conn: Connection, message_ids: list[uuid.UUID]) -> None:
    if message_ids:
        await conn.execute("DELETE FROM comms.send_jobs WHERE message_id = ANY(CAST(:ms AS uuid[]))",
                           {"ms": message_ids})


async def retry_job(conn: Connection, message_id: uuid.UUID, attempts: int, delay_seconds: float) -> None:
    await conn.execute(
        "UPDATE comms.send_jobs SET attempts = :a, due_at = now() + make_interval(secs => :d), locked_until = NULL, "
        "updated_at = now() WHERE message_id = :m", {"a": attempts, "d": delay_seconds, "m": message_id})


async def retry_jobs(conn: Connection, jobs: list[tuple[uuid.UUID, int]], delay_seconds: float) -> None:
    """retry_job for several (message id, attempts) with one delay, in one statement."""
    if jobs:
        await conn.execute(
            "UPDATE comms.send_jobs j SET attempts = r.a, due_at = now() + make_interval(secs => :d), "
            "locked_until = NULL, updated_at = now() "
            "FROM unnest(CAST(:ms AS uuid[]), CAST(:atts AS int[])) AS r(m, a) WHERE j.message_id = r.m",
            {"ms": [m for m, _ in jobs], "atts": [a for _, a in jobs], "d": delay_seconds})


async def next_due(conn: Connection) -> datetime | None:
    return (await conn.execute("SELECT min(due_at) FROM comms.send_jobs")).scalar()


# -- links and events -----------------------------------------------------------------------


async def add_links(conn: Connection, org: uuid.UUID, message_id: uuid.UUID, links: dict[uuid.UUID, str]) -> None:
    if links:
        await conn.execute(
            "INSERT INTO comms.links (id, organization_id, message_id, url) VALUES (:id, :org, :m, :url)",
            [{"id": k, "org": org, "m": message_id, "url": u} for k, u in links.items()])


async def link_target(conn: Connection, org: uuid.UUID, message_id: uuid.UUID,
                      link_id: uuid.UUID) -> tuple[str, datetime | None, uuid.UUID | None] | None:
    """A click's link: its destination, and its message's sending time and donor (one read, no
    counting of the message's events)."""
    row = (await conn.execute(
        "SELECT l.url, m.sent_at, m.donor_id FROM comms.links l JOIN comms.messages m "
        "ON m.organization_id = l.organization_id AND m.id = l.message_id "
        "WHERE l.organization_id = :org AND l.id = :id AND l.message_id = :m",
        {"org": org, "id": link_id, "m": message_id})).first()
    return (row[0], row[1], row[2]) if row is not None else None


async def add_clicks(conn: Connection, org: uuid.UUID,
                     clicks: list[tuple[uuid.UUID, bool, str, str | None, datetime]]) -> None:
    """Clicks (message, machine, url, user agent, time) as email events, in one statement."""
    await conn.execute(
        "INSERT INTO comms.email_events (id, organization_id, message_id, kind, machine, url, user_agent, "
        "created_at) SELECT gen_random_uuid(), :org, c.m, 'clicked', c.machine, c.url, c.ua, c.at "
        "FROM unnest(CAST(:ms AS uuid[]), CAST(:machines AS boolean[]), CAST(:urls AS text[]), "
        "CAST(:uas AS text[]), CAST(:ats AS timestamptz[])) AS c(m, machine, url, ua, at)",
        {"org": org, "ms": [c[0] for c in clicks], "machines": [c[1] for c in clicks],
         "urls": [c[2] for c in clicks], "uas": [c[3] for c in clicks], "ats": [c[4] for c in clicks]})


async def open_target(conn: Connection, org: uuid.UUID,
                      message_id: uuid.UUID) -> tuple[datetime | None, uuid.UUID | None] | None:
    row = (await conn.execute("SELECT sent_at, donor_id FROM comms.messages WHERE organization_id = :org "
                              "AND id = :m", {"org": org, "m": message_id})).first()
    return (row[0], row[1]) if row is not None else None


async def add_event(conn: Connection, org: uuid.UUID, message_id: uuid.UUID, kind: str, *, machine: bool = False,
                    url: str | None = None, user_agent: str | None = None, detail: str = "",
                    webhook_event_id: uuid.UUID | None = None) -> bool:
    """False when the provider event `webhook_event_id` made its email event already (a replay)."""
    result = await conn.execute(
        "INSERT INTO comms.email_events (id, organization_id, message_id, kind, machine, url, user_agent, detail, "
        "webhook_event_id) VALUES (:id, :org, :m, :kind, :machine, :url, :ua, :detail, :w) ON CONFLICT DO NOTHING",
        {"id": uuid.uuid4(), "org": org, "m": message_id, "kind": kind, "machine": machine, "url": url,
         "ua": (user_agent or "")[:500] or None, "detail": detail[:1000], "w": webhook_event_id})
    return result.rowcount == 1


async def events(conn: Connection, org: uuid.UUID, message_id: uuid.UUID) -> list[dict[str, Any]]:
    return await sql.every(conn, "SELECT kind, machine, url, detail, created_at FROM comms.email_events "
                                 "WHERE organization_id = :org AND message_id = :m ORDER BY created_at",
                           {"org": org, "m": message_id})
