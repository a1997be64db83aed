"""Numbered tax receipts that lock their gifts: issued when a gift's receipt is marked sent,
voided and replaced by a corrected receipt (a new number) in the same transaction as any write
that changes what the receipt says (amount net of refunds, date, donor, deductibility), never
edited in place. Read: GetReceipt, ListReceipts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from givance.events.v1 import crm_events_pb2

from chassis.audit import ReadAudit
from chassis.convert import date as date_pb
from chassis.convert import money
from chassis.db import Database, UnitOfWork
from chassis.errors import NotFound, Violations
from chassis.resource import Keyset, parse_id, parse_optional_id
from services.crm.domain import donations as gift_rules
from services.crm.store import receipts as receipt_store
from services.crm.store import tax_receipts as store
from services.crm.store.donations import Donation
from services.crm.store.receipts import ReceiptTotal
from services.crm.store.tax_receipts import Receipt

__all__ = ["Receipt", "ReceiptTotal"]


def qualifies(gift: Donation) -> bool:
    """A gift takes a tax receipt when it is tax-deductible and something of it remains."""
    return gift.tax_deductible and gift.amount > gift.refunded_amount


def _agrees(r: Receipt, gift: Donation) -> bool:
    return (r.amount == gift.amount - gift.refunded_amount and r.currency == gift.currency
            and r.gift_date == gift.date and r.donor_id == gift.donor_id)


async def _issue(uow: UnitOfWork, org: uuid.UUID, gift: Donation, at: datetime,
                 replaces: uuid.UUID | None, receipt_id: uuid.UUID | None = None) -> Receipt:
    seq = await store.next_sequence(uow.conn, org, gift.date.year)
    r = await store.insert(uow.conn, org, receipt_id or uuid.uuid4(), seq, gift.id, gift.donor_id,
                           gift.amount - gift.refunded_amount, gift.currency, gift.date, at, replaces)
    uow.audit("crm.receipt.issue", "receipt", str(r.id), after={
        "number": r.number, "donation_id": str(gift.id), "donor_id": str(gift.donor_id), "amount": r.amount,
        "currency": r.currency, "gift_date": r.gift_date, "replaces_id": str(replaces or "")})
    return r


async def issue_for(uow: UnitOfWork, org: uuid.UUID, gifts: list[Donation], at: datetime) -> None:
    """Each gift that takes a receipt and has none live gets one: in (year, date, id) order, so
    numbers follow the gifts' dates and two issuers lock the years' counters in one order."""
    live = await store.live_of(uow.conn, org, [g.id for g in gifts])
    for g in sorted(gifts, key=lambda g: (g.date, g.id)):
        if qualifies(g) and g.id not in live:
            await _issue(uow, org, g, at, None)


async def follow_gift(uow: UnitOfWork, org: uuid.UUID, before: Donation, after: Donation, reason: str) -> None:
    """After a correction or a refund of a gift whose receipt was sent: when the live receipt no
    longer says what the gift does, void it and issue a corrected one (unless the gift no longer
    takes a receipt), and publish crm.receipt.corrected."""
    if not after.receipt_sent:
        return
    live = (await store.live_of(uow.conn, org, [after.id])).get(after.id)
    takes = qualifies(after)
    if live is not None and takes and _agrees(live, after):
        return
    if live is None and not takes:
        return
    now = datetime.now(UTC)
    new_id = uuid.uuid4() if takes else None
    if live is not None:
        await store.void(uow.conn, org, live.id, reason, new_id)
        uow.audit("crm.receipt.void", "receipt", str(live.id), before={"status": "issued"},
                  after={"status": "void", "reason": reason, "replaced_by_id": str(new_id or "")})
    replaces = live.id if live is not None else await store.last_voided(uow.conn, org, after.id)
    new = await _issue(uow, org, after, now, replaces, new_id) if takes else None
    event = crm_events_pb2.ReceiptCorrectedEvent(
        donation_id=str(after.id), donor_id=str(after.donor_id),
        voided_receipt_id=str(live.id) if live else "", voided_number=live.number if live else "",
        receipt_id=str(new.id) if new else "", number=new.number if new else "", reason=reason,
        previous_donor_id=str(live.donor_id) if live and live.donor_id != after.donor_id else "")
    if new is not None:
        event.amount.CopyFrom(money(new.amount, new.currency))
        event.gift_date.CopyFrom(date_pb(new.gift_date))
    uow.publish("crm.receipt.corrected", event, aggregate_type="donor", aggregate_id=str(after.donor_id))


async def attach(uow: UnitOfWork, org: uuid.UUID, gifts: list[Donation]) -> None:
    live = await store.live_of(uow.conn, org, [g.id for g in gifts])
    for g in gifts:
        r = live.get(g.id)
        g.receipt_number = r.number if r else None


async def mark_receipts_sent(db: Database, org: uuid.UUID, donation_ids: list[str],
                             send_time: datetime | None) -> tuple[list[Donation], int]:
    """Mark the gifts' receipts sent, all or nothing, and issue each newly marked gift that takes
    one its numbered receipt."""
    v = Violations()
    if not donation_ids:
        v.add("donation_ids", "name at least one donation")
    elif len(donation_ids) > gift_rules.MAX_RECEIPT_IDS:
        v.add("donation_ids", f"must name at most {gift_rules.MAX_RECEIPT_IDS} donations")
    ids: list[uuid.UUID] = []
    for i, raw in enumerate(donation_ids[:gift_rules.MAX_RECEIPT_IDS + 1]):
        gid = parse_id(raw, f"donation_ids[{i}]", v)
        if gid is not None:
            ids.append(gid)
    v.raise_if_any()
    when = send_time or datetime.now(UTC)
    async with db.unit_of_work(org) as uow:
        found = await receipt_store.lock_many(uow.conn, org, ids)
        missing = [str(i) for i in dict.fromkeys(ids) if i not in found]
        if missing:  # all or nothing
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise NotFound(f"donations not found: {shown}; no receipt was marked")
        rows, marked = await receipt_store.mark_receipts(uow.conn, org, list(dict.fromkeys(ids)), when)
        for gid in marked:
            uow.audit("crm.donation.receipt_sent", "donation", str(gid), before={"receipt_sent": False},
                      after={"receipt_sent": True, "receipt_sent_date": when})
        newly = set(marked)
        await issue_for(uow, org, [r for r in rows if r.id in newly], when)
        await attach(uow, org, rows)
        return rows, len(marked)


async def receipt_summary(db: Database, reads: ReadAudit, org: uuid.UUID, donor_id: str,
                          year: int) -> list[ReceiptTotal]:
    v = Violations()
    did = parse_id(donor_id, "donor_id", v)
    if not 1900 <= year <= 9998:
        v.add("year", "must be a calendar year such as 2026")
    v.raise_if_any()
    assert did is not None
    async with db.unit_of_work(org) as uow:
        if not await receipt_store.donor_exists(uow.conn, org, did):
            raise NotFound(f"donor {donor_id} not found")
        totals = await receipt_store.receipt_summary(uow.conn, org, did, year)
    reads.record("crm.donation.receipt_summary", "donor", str(did), after={"year": year})
    return totals


async def get_receipt(db: Database, reads: ReadAudit, org: uuid.UUID, receipt_id: str) -> Receipt:
    rid = parse_id(receipt_id, "id")
    async with db.unit_of_work(org) as uow:
        r = await store.get(uow.conn, org, rid)
    if r is None:
        raise NotFound(f"receipt {receipt_id} not found")
    reads.record("crm.receipt.get", "receipt", str(rid))
    return r


async def list_receipts(db: Database, reads: ReadAudit, org: uuid.UUID, donor_id: str, donation_id: str, year: int,
                        page_size: int, page_token: str) -> tuple[list[Receipt], str]:
    v = Violations()
    did = parse_optional_id(donor_id, "donor_id", v)
    gid = parse_optional_id(donation_id, "donation_id", v)
    if year and not 1900 <= year <= 9999:
        v.add("year", "must be a calendar year such as 2026")
    v.raise_if_any()
    page = Keyset.of(page_size, page_token, ("receipts", donor_id, donation_id, year), (int, int))
    async with db.unit_of_work(org) as uow:
        rows = await store.page(uow.conn, org, donor_id=did, donation_id=gid, year=year or None,
                                after=page.after, limit=page.limit)
    reads.record("crm.receipt.list", "donor", str(did) if did else "", after={"returned": min(len(rows), page.size)})
    return page.cut(rows, lambda r: (r.year, r.sequence))
