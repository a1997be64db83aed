"""Gift batches: create, read, list, enter and remove gifts, post (every gift recorded in one
transaction through the same path as RecordDonation, or none)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from givance.events.v1 import crm_events_pb2

from chassis.convert import money
from chassis.db import Database, UnitOfWork
from chassis.errors import FailedPrecondition, InvalidArgument, NotFound, Violations
from chassis.resource import Keyset, check_etag, check_request_id, parse_id
from services.crm.domain import donations as gift_rules
from services.crm.domain.donations import DonationFields
from services.crm.handlers import pledges
from services.crm.handlers.donations import check_record, record_in
from services.crm.store import donations as gift_store
from services.crm.store import gift_batches as store
from services.crm.store.gift_batches import BatchGift, GiftBatch

__all__ = ["BatchGift", "DonationFields", "GiftBatch", "status"]
MAX_COUNT = 10_000


def status(b: GiftBatch) -> str:
    if b.status == "posted":
        return "posted"
    balanced = b.entered_count == b.expected_count and b.entered_total == b.expected_total
    return "balanced" if balanced else "open"


async def create_batch(db: Database, org: uuid.UUID, name: str, expected_count: int, expected_total: Decimal | None,
                       currency: str, request_id: str) -> GiftBatch:
    v = Violations()
    name = (name or "").strip()
    v.check_text("batch.name", name, 200, required=True)
    if not 0 <= expected_count <= MAX_COUNT:
        v.add("batch.expected_count", f"must be between 0 and {MAX_COUNT}")
    if expected_total is None:
        v.add("batch.expected_total", "is required")
    elif expected_total < 0 or expected_total != expected_total.quantize(Decimal("0.01")):
        v.add("batch.expected_total", "must be zero or more, with at most two decimal places")
    elif not gift_rules.CURRENCY_RE.match(currency or ""):
        v.add("batch.expected_total.currency_code", "must be a three-letter ISO 4217 code such as USD")
    check_request_id(request_id, v)
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        bid = uuid.uuid4()
        values = {"name": name, "currency": currency, "expected_count": expected_count,
                  "expected_total": expected_total}
        if not await store.insert(uow.conn, org, bid, values, request_id or None):
            bid = await store.id_by_request_id(uow.conn, org, request_id)
            return await store.get(uow.conn, org, bid)
        uow.audit("crm.gift_batch.create", "gift_batch", str(bid), after=values)
        return await store.get(uow.conn, org, bid)


async def get_batch(db: Database, org: uuid.UUID, batch_id: str) -> GiftBatch:
    bid = parse_id(batch_id, "id")
    async with db.unit_of_work(org) as uow:
        return await _found(uow, org, bid, batch_id)


async def _found(uow: UnitOfWork, org: uuid.UUID, bid: uuid.UUID, name: str) -> GiftBatch:
    row = await store.get(uow.conn, org, bid)
    if row is None:
        raise NotFound(f"gift batch {name} not found")
    return row


async def list_batches(db: Database, org: uuid.UUID, page_size: int, page_token: str) -> tuple[list[GiftBatch], str]:
    page = Keyset.of(page_size, page_token, ("gift_batches",), (datetime.fromisoformat, uuid.UUID))
    async with db.unit_of_work(org) as uow:
        rows = await store.page(uow.conn, org, page.after, page.limit)
    return page.cut(rows, lambda r: (r.created_at, r.id))


async def _open(uow: UnitOfWork, org: uuid.UUID, bid: uuid.UUID, name: str) -> GiftBatch:
    if not await store.lock(uow.conn, org, bid):
        raise NotFound(f"gift batch {name} not found")
    row = await store.get(uow.conn, org, bid)
    if row.status == "posted":
        raise FailedPrecondition(f"gift batch {name} is posted; its gifts are recorded", reason="BATCH_POSTED")
    return row


async def add_gift(db: Database, org: uuid.UUID, batch_id: str, d: DonationFields) -> tuple[BatchGift, GiftBatch]:
    v = Violations()
    bid = parse_id(batch_id, "batch_id", v)
    d.soft_credits, d.allocations, d.is_recurring, d.recurring_frequency, d.tribute = [], [], False, None, None
    checked = check_record(d, v)
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        batch = await _open(uow, org, bid, batch_id)
        if d.currency != batch.currency:
            raise InvalidArgument.field("donation.amount.currency_code",
                                        f"must be the batch's currency, {batch.currency}")
        if not await store_donor_live(uow, org, checked.donor_id):
            raise InvalidArgument.field("donation.donor_id", "no such donor")
        if checked.pledge_id:  # checked against the gift again when the batch posts
            await pledges.check_exists(uow, org, checked.pledge_id)
        gift = await store.add_gift(uow.conn, org, bid, {
            "donor_id": checked.donor_id, "project_id": checked.project_id, "amount": d.amount,
            "currency": d.currency, "date": d.date, "payment_method": d.payment_method,
            "reference_number": d.reference_number, "notes": d.notes, "tax_deductible": d.tax_deductible,
            "pledge_id": checked.pledge_id})
        await store.touch(uow.conn, org, bid)
        return gift, await store.get(uow.conn, org, bid)


async def store_donor_live(uow: UnitOfWork, org: uuid.UUID, donor_id: uuid.UUID) -> bool:
    return bool((await gift_store.lock_donors(uow.conn, org, [donor_id])).get(donor_id))


async def remove_gift(db: Database, org: uuid.UUID, batch_id: str, gift_id: str) -> GiftBatch:
    v = Violations()
    bid = parse_id(batch_id, "batch_id", v)
    gid = parse_id(gift_id, "gift_id", v)
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        await _open(uow, org, bid, batch_id)
        if not await store.remove_gift(uow.conn, org, bid, gid):
            raise NotFound(f"gift {gift_id} of batch {batch_id} not found")
        await store.touch(uow.conn, org, bid)
        return await store.get(uow.conn, org, bid)


async def list_gifts(db: Database, org: uuid.UUID, batch_id: str, page_size: int,
                     page_token: str) -> tuple[list[BatchGift], str]:
    bid = parse_id(batch_id, "batch_id")
    page = Keyset.of(page_size, page_token, ("batch_gifts", batch_id), (datetime.fromisoformat, uuid.UUID))
    async with db.unit_of_work(org) as uow:
        await _found(uow, org, bid, batch_id)
        rows = await store.gifts(uow.conn, org, bid, page.after, page.limit)
    return page.cut(rows, lambda r: (r.created_at, r.id))


async def post_batch(db: Database, org: uuid.UUID, batch_id: str, etag: str) -> GiftBatch:
    bid = parse_id(batch_id, "id")
    async with db.unit_of_work(org) as uow:
        batch = await _open(uow, org, bid, batch_id)
        check_etag(etag, batch.version, "gift batch", "etag")
        if status(batch) != "balanced":
            raise FailedPrecondition(
                f"gift batch {batch_id} does not balance: {batch.entered_count} gifts of {batch.entered_total} "
                f"entered, {batch.expected_count} of {batch.expected_total} expected", reason="BATCH_UNBALANCED",
                metadata={"entered_count": str(batch.entered_count), "entered_total": str(batch.entered_total)})
        recorded: dict[uuid.UUID, uuid.UUID] = {}
        for g in await store.gifts(uow.conn, org, bid, None, MAX_COUNT + 1):
            d = DonationFields(donor_id=str(g.donor_id), project_id=str(g.project_id) if g.project_id else None,
                               amount=g.amount, currency=g.currency, date=g.date, payment_method=g.payment_method,
                               reference_number=g.reference_number, notes=g.notes, is_recurring=False,
                               recurring_frequency=None, tax_deductible=g.tax_deductible,
                               pledge_id=str(g.pledge_id) if g.pledge_id else None)
            v = Violations()
            checked = check_record(d, v)
            v.raise_if_any()
            # The batch gift's id is the gift's request id: a gift is recorded once, whatever happens.
            row = await record_in(uow, org, d, checked, f"batch:{g.id}")
            recorded[g.id] = row.id
        await store.mark_posted(uow.conn, org, bid, recorded)
        posted = await store.get(uow.conn, org, bid)
        uow.publish("crm.batch.posted", crm_events_pb2.BatchPostedEvent(
            batch_id=str(bid), gift_count=len(recorded), total=money(posted.entered_total, posted.currency),
            donation_ids=[str(i) for i in recorded.values()]), aggregate_type="gift_batch", aggregate_id=str(bid))
        uow.audit("crm.gift_batch.post", "gift_batch", str(bid),
                  after={"gifts": len(recorded), "total": posted.entered_total, "currency": posted.currency})
        return posted
