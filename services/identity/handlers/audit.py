"""The audit trail: record what every service reports (`<service>.audit.recorded`), list it,
and keep its monthly partitions ahead of time."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime

from chassis import paging
from chassis.db import Database, UnitOfWork
from chassis.errors import InvalidArgument, Violations
from chassis.resource import Keyset
from services.identity.store import audit as store
from services.identity.store.audit import Action, ActivityEntry

log = logging.getLogger(__name__)

FILTER_MAX = 200
PARTITION_MONTHS_AHEAD = 3
PARTITION_CHECK_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Activity(Action):
    """One audited action, as reported by the service that performed it."""

    event_id: str
    occurred_at: datetime
    service: str
    ip_address: str
    request_id: str


async def record(uow: UnitOfWork, activity: Activity) -> None:
    """In the consumer's unit of work (its inbox makes a redelivery insert nothing)."""
    assert uow.tenant_id is not None
    await store.insert(uow.conn, uow.tenant_id, {
        "occurred_at": activity.occurred_at, "actor_id": activity.actor_id[:200],
        "actor_kind": activity.actor_kind or "system", "action": activity.action[:200],
        "resource_type": activity.resource_type[:200], "resource_id": activity.resource_id[:200],
        "before": activity.before, "after": activity.after, "ip_address": activity.ip_address[:100] or None,
        "request_id": activity.request_id[:200] or None, "service": activity.service[:100],
        "event_id": uuid.UUID(activity.event_id),
    })


@dataclass(frozen=True)
class ListActivity:
    page_size: int = 0
    page_token: str = ""
    actor_id: str = ""
    action: str = ""
    resource_type: str = ""
    resource_id: str = ""
    start_time: datetime | None = None
    end_time: datetime | None = None


async def list_activity(db: Database, org: uuid.UUID, q: ListActivity) -> tuple[list[ActivityEntry], str]:
    v = Violations()
    try:  # reported with the filters' violations (Keyset.of below would raise it alone)
        paging.page_size(q.page_size)
    except InvalidArgument as exc:
        v.items += exc.violations
    for field in ("actor_id", "action", "resource_type", "resource_id"):
        v.check_text(field, getattr(q, field), FILTER_MAX)
    if q.start_time and q.end_time and q.end_time <= q.start_time:
        v.add("end_time", "must be after start_time")
    v.raise_if_any()
    page = Keyset.of(q.page_size, q.page_token, ("activity", q.actor_id, q.action, q.resource_type, q.resource_id,
                                                 q.start_time, q.end_time), (datetime.fromisoformat, uuid.UUID))
    prefix = q.action if q.action.endswith(".") else None
    async with db.unit_of_work(org) as uow:
        rows = await store.page(
            uow.conn, org, actor_id=q.actor_id or None, action=(q.action or None) if prefix is None else None,
            action_prefix=prefix, resource_type=q.resource_type or None, resource_id=q.resource_id or None,
            start=q.start_time, end=q.end_time, after=page.after, limit=page.limit)
    return page.cut(rows, lambda r: (r.occurred_at, r.id))


async def ensure_partitions(db: Database, today: date | None = None) -> None:
    """This month's partition and the next ones; each month in its own transaction, so one
    that cannot be made (say, rows of it already sit in the default partition) does not stop
    the others."""
    first = (today or datetime.now(UTC).date()).replace(day=1)
    for i in range(PARTITION_MONTHS_AHEAD):
        month = date(first.year + (first.month - 1 + i) // 12, (first.month - 1 + i) % 12 + 1, 1)
        try:
            async with db.unit_of_work(None) as uow:
                await store.ensure_partitions(uow.conn, month, 1)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - logged; the default partition still takes the rows
            log.error("identity: cannot create the activity_logs partition of %s: %s", month, exc)


async def maintain_partitions(db: Database, interval: float = PARTITION_CHECK_SECONDS) -> None:
    """At start, then daily (a background task of the identity process)."""
    while True:
        await ensure_partitions(db)
        await asyncio.sleep(interval)
