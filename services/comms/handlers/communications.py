"""The communications log: staff log contacts; comms logs its own sends."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from givance.events.v1 import comms_events_pb2

from chassis.convert import timestamp
from chassis.db import Database, UnitOfWork
from chassis.errors import Violations
from chassis.resource import Keyset, check_request_id, found, parse_id, parse_optional_id
from services.comms.domain import messages as rules
from services.comms.store import communications as store

_FUTURE = timedelta(minutes=5)  # clock skew allowed for a client's "now"


@dataclass
class LogFields:
    donor_id: str
    channel: str | None
    direction: str | None
    subject: str
    content: str
    occurred_at: datetime | None


async def _insert(uow: UnitOfWork, org: uuid.UUID, values: dict[str, Any]) -> bool:
    if not await store.insert(uow.conn, values):
        return False
    uow.publish(rules.COMMUNICATION_LOGGED, comms_events_pb2.CommunicationLoggedEvent(
        communication_id=str(values["id"]), donor_id=str(values["donor_id"]), channel=values["channel"],
        direction=values["direction"], occur_time=timestamp(values["occurred_at"])),
        aggregate_type="donor", aggregate_id=str(values["donor_id"]))
    return True


async def log_sent(uow: UnitOfWork, org: uuid.UUID, msg: Any, when: datetime) -> None:
    """comms' own send to a donor, in the send's unit of work."""
    await _insert(uow, org, {
        "id": uuid.uuid4(), "organization_id": org, "donor_id": msg.donor_id, "channel": msg.channel,
        "direction": "outbound", "subject": msg.subject[:rules.SUBJECT_MAX],
        "content": f"{msg.template_name} ({msg.category})", "occurred_at": when, "logged_by": None,
        "message_id": msg.id})


async def log_communication(db: Database, crm: Any, forward: Any, org: uuid.UUID, caller: str, f: LogFields,
                            request_id: str) -> dict[str, Any]:
    """Logs a contact; the donor must be one crm shows the caller (`forward`: the caller's token)."""
    v = Violations()
    check_request_id(request_id, v)
    donor = parse_id(f.donor_id, "communication.donor_id", v)
    if f.channel is None:
        v.add("communication.channel", "is required")
    if f.direction is None:
        v.add("communication.direction", "is required")
    v.check_text("communication.subject", f.subject, rules.SUBJECT_MAX)
    v.check_text("communication.content", f.content, rules.CONTENT_MAX)
    now = datetime.now(UTC)
    if f.occurred_at is not None and f.occurred_at > now + _FUTURE:
        v.add("communication.occur_time", "must not be in the future")
    v.raise_if_any()
    try:
        logged_by = uuid.UUID(caller)
    except ValueError:
        logged_by = None
    async with db.unit_of_work(org) as uow:
        if request_id:
            earlier = await store.id_by_request_id(uow.conn, org, request_id)
            if earlier is not None:
                return await store.get(uow.conn, org, earlier)
    await crm.donor(forward, str(donor))  # NOT_FOUND for another organization's donor
    async with db.unit_of_work(org) as uow:
        cid = uuid.uuid4()
        values = {"id": cid, "organization_id": org, "donor_id": donor, "channel": f.channel,
                  "direction": f.direction, "subject": f.subject, "content": f.content,
                  "occurred_at": f.occurred_at or now, "logged_by": logged_by, "message_id": None,
                  "create_request_id": request_id or None}
        if not await _insert(uow, org, values):
            cid = await store.id_by_request_id(uow.conn, org, request_id)
        return await store.get(uow.conn, org, cid)


async def get_communication(db: Database, org: uuid.UUID, comm_id: str) -> dict[str, Any]:
    cid = parse_id(comm_id, "id")
    async with db.unit_of_work(org) as uow:
        row = await store.get(uow.conn, org, cid)
    return found(row, "communication", comm_id)


async def list_communications(db: Database, org: uuid.UUID, *, donor_id: str, channel: str | None,
                              after_time: datetime | None, before_time: datetime | None, page_size: int,
                              page_token: str) -> tuple[list[dict[str, Any]], str]:
    donor = parse_optional_id(donor_id, "donor_id")
    page = Keyset.of(page_size, page_token, ("communications", donor, channel, after_time, before_time),
                     (datetime.fromisoformat, uuid.UUID), maximum=500)
    async with db.unit_of_work(org) as uow:
        rows = await store.page(uow.conn, org, donor_id=donor, channel=channel, after_time=after_time,
                                before_time=before_time, after=page.after, limit=page.limit)
    return page.cut(rows, lambda r: (r["occurred_at"], r["id"]))
