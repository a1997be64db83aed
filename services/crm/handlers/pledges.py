"""Pledges: create, read, list, write off; and the gifts that pay them: applied when recorded,
and the pledge's received amount, payment count and status kept exact through every write of
those gifts (refunds, corrections), in the same transaction (locks: the gift's donors, the
gift, then the pledge)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from givance.events.v1 import crm_events_pb2

from chassis.convert import money
from chassis.db import Database, UnitOfWork
from chassis.errors import InvalidArgument, NotFound, Violations
from chassis.resource import Keyset, check_etag, check_request_id, parse_id, parse_optional_id
from services.crm.domain import pledges as rules
from services.crm.domain import projects as project_rules
from services.crm.domain.pledges import Installment, PledgeFields
from services.crm.store import pledges as store
from services.crm.store import projects as project_store
from services.crm.store.donations import Donation
from services.crm.store.pledges import Pledge

__all__ = ["Installment", "Pledge", "PledgeFields", "View"]


@dataclass(frozen=True)
class View:
    """A pledge as read: with its balance and its schedule."""

    pledge: Pledge
    balance: Decimal
    installments: list[Installment]


def view(p: Pledge) -> View:
    return View(p, rules.balance(p.status, p.amount, p.received_amount),
                rules.schedule(p.amount, p.start_date, p.frequency, p.installment_count, p.received_amount, p.status,
                               datetime.now(UTC).date()))


def _publish(uow: UnitOfWork, kind: str, p: Pledge, donation_id: str = "") -> None:
    event = crm_events_pb2.PledgeEvent(
        pledge_id=str(p.id), donor_id=str(p.donor_id), amount=money(p.amount, p.currency),
        received_amount=money(p.received_amount, p.currency),
        balance=money(rules.balance(p.status, p.amount, p.received_amount), p.currency), status=p.status,
        donation_id=donation_id, reason=p.write_off_reason or "")
    if p.written_off_amount is not None:
        event.written_off_amount.CopyFrom(money(p.written_off_amount, p.currency))
    uow.publish(f"crm.pledge.{kind}", event, aggregate_type="donor", aggregate_id=str(p.donor_id))


async def create_pledge(db: Database, org: uuid.UUID, fields: PledgeFields, request_id: str) -> View:
    v = Violations()
    donor_id = parse_id(fields.donor_id, "pledge.donor_id", v)
    project_id = parse_optional_id(fields.project_id, "pledge.project_id", v)
    frequency, count = rules.check(fields, v)
    check_request_id(request_id, v)
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        if project_id:
            status = await project_store.status_for_gift(uow.conn, org, project_id)
            if status is None:
                raise InvalidArgument.field("pledge.project_id", "no such project")
            project_rules.check_accepts_gifts(status, str(project_id))
        values = {"donor_id": donor_id, "project_id": project_id, "amount": fields.amount,
                  "currency": fields.currency, "start_date": fields.start_date, "frequency": frequency,
                  "installment_count": count, "notes": fields.notes}
        row = await store.insert(uow.conn, org, uuid.uuid4(), values, request_id or None)
        if row is None:
            first = await store.by_request_id(uow.conn, org, request_id) if request_id else None
            if first is None:
                raise InvalidArgument.field("pledge.donor_id", "no such donor")
            return view(first)  # AIP-155: the first result
        _publish(uow, "created", row)
        uow.audit("crm.pledge.create", "pledge", str(row.id), after={k: values[k] for k in values})
        return view(row)


async def get_pledge(db: Database, org: uuid.UUID, pledge_id: str) -> View:
    pid = parse_id(pledge_id, "id")
    async with db.unit_of_work(org) as uow:
        row = await store.get(uow.conn, org, pid)
    if row is None:
        raise NotFound(f"pledge {pledge_id} not found")
    return view(row)


async def list_pledges(db: Database, org: uuid.UUID, donor_id: str, status: str | None, page_size: int,
                       page_token: str) -> tuple[list[View], str]:
    did = parse_optional_id(donor_id, "donor_id")
    page = Keyset.of(page_size, page_token, ("pledges", donor_id, status or ""), (datetime.fromisoformat, uuid.UUID))
    async with db.unit_of_work(org) as uow:
        rows = await store.page(uow.conn, org, donor_id=did, status=status, after=page.after, limit=page.limit)
    rows, token = page.cut(rows, lambda r: (r.created_at, r.id))
    return [view(r) for r in rows], token


async def write_off(db: Database, org: uuid.UUID, pledge_id: str, etag: str, reason: str) -> View:
    v = Violations()
    pid = parse_id(pledge_id, "id", v)
    reason = (reason or "").strip()
    v.check_text("reason", reason, rules.MAX_REASON, required=True)
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        row = await store.get(uow.conn, org, pid, lock=True)
        if row is None:
            raise NotFound(f"pledge {pledge_id} not found")
        check_etag(etag, row.version, "pledge", "etag")
        rules.check_write_off(row.status, pledge_id)
        updated = await store.write_off(uow.conn, org, pid, row.amount - row.received_amount, reason)
        _publish(uow, "written_off", updated)
        uow.audit("crm.pledge.write_off", "pledge", str(pid), before={"status": row.status},
                  after={"status": updated.status, "written_off_amount": updated.written_off_amount, "reason": reason})
        return view(updated)


# -- the gifts that pay a pledge ---------------------------------------------------------------


async def check_exists(uow: UnitOfWork, org: uuid.UUID, pledge_id: uuid.UUID,
                       path: str = "donation.pledge_id") -> None:
    """Before a gift paying a pledge is recorded (the pledge is locked, and checked, after it)."""
    if await store.get(uow.conn, org, pledge_id) is None:
        raise InvalidArgument.field(path, "no such pledge")


async def apply_on_record(uow: UnitOfWork, org: uuid.UUID, gift: Donation, path: str = "donation.pledge_id") -> None:
    """A just-recorded gift with a pledge_id: checked against the pledge (a broken rule rolls the
    whole record back), then the pledge's received amount and status follow."""
    pledge = await store.get(uow.conn, org, gift.pledge_id, lock=True)
    if pledge is None:
        raise InvalidArgument.field(path, "no such pledge")
    rules.check_payment(pledge.status, pledge.donor_id == gift.donor_id, pledge.currency, gift.currency,
                        str(pledge.id), path, Violations())
    await _follow(uow, org, pledge, str(gift.id))


async def follow_gift(uow: UnitOfWork, org: uuid.UUID, gift: Donation) -> None:
    """After a refund or a correction of a gift that pays a pledge."""
    if gift.pledge_id is None:
        return
    pledge = await store.get(uow.conn, org, gift.pledge_id, lock=True)
    await _follow(uow, org, pledge, "")


async def _follow(uow: UnitOfWork, org: uuid.UUID, pledge: Pledge, donation_id: str) -> None:
    received, count = await store.paid(uow.conn, org, pledge.id)
    if (received, count) == (pledge.received_amount, pledge.payment_count) and not donation_id:
        return
    status = rules.status_after(pledge.status, pledge.amount, received)
    updated = await store.set_received(uow.conn, org, pledge.id, received, count, status)
    if donation_id:
        _publish(uow, "payment_applied", updated, donation_id)
    if status != pledge.status:
        _publish(uow, "fulfilled" if status == rules.FULFILLED else "reopened", updated)
