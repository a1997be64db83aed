"""Funds (general accounting units): create, read, list, update, totals per period; and a gift's
split across funds: on record, replaced (SetDonationAllocations), and kept exact through refunds
(each allocation's share, in proportion) and corrections (the split rescaled in proportion).
The database checks every split at commit (crm.gift_allocations_exact)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date
from decimal import Decimal

from chassis.db import Database, UnitOfWork
from chassis.errors import InvalidArgument, Violations
from chassis.resource import Keyset, check_etag, check_request_id, current, parse_id, parse_optional_id, read_one
from chassis.resource import update_request as parse_update
from services.crm.domain import funds as rules
from services.crm.domain.funds import Allocation, AllocationInput, FundFields
from services.crm.handlers.soft_credits import lock_gift
from services.crm.store import donations as gift_store
from services.crm.store import funds as store
from services.crm.store.donations import Donation
from services.crm.store.funds import Fund, FundTotal, GiftAllocation

__all__ = ["AllocationInput", "Fund", "FundFields", "FundTotal", "GiftAllocation"]
_AUDITED = ("name", "code", "description", "restriction", "status")
PERIODS = ("year", "quarter", "month")


def _audited(f: Fund) -> dict:
    return {k: getattr(f, k) for k in _AUDITED}


async def create_fund(db: Database, org: uuid.UUID, fields: FundFields, request_id: str) -> Fund:
    v = Violations()
    check_request_id(request_id, v)
    clean = rules.normalize(fields, "fund", v)
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        row = await store.insert(uow.conn, org, uuid.uuid4(), vars(clean), request_id or None)
        if row is None:
            return await store.by_request_id(uow.conn, org, request_id)  # AIP-155: the first result
        uow.audit("crm.fund.create", "fund", str(row.id), after=_audited(row))
        return row


async def get_fund(db: Database, org: uuid.UUID, fund_id: str) -> Fund:
    return await read_one(db, org, fund_id, "fund", store.get)


async def list_funds(db: Database, org: uuid.UUID, status: str | None, page_size: int,
                     page_token: str) -> tuple[list[Fund], str]:
    page = Keyset.of(page_size, page_token, ("funds", status or ""), (str, uuid.UUID))
    async with db.unit_of_work(org) as uow:
        rows = await store.page(uow.conn, org, status, page.after, page.limit)
    return page.cut(rows, lambda r: (r.name.lower(), r.id))


async def update_fund(db: Database, org: uuid.UUID, fund_id: str, etag: str, patch: FundFields,
                      mask: list[str]) -> Fund:
    fid, attrs = parse_update(fund_id, "fund.id", mask, rules.UPDATE_PATHS)
    v = Violations()
    async with db.unit_of_work(org) as uow:
        row = current(await store.get(uow.conn, org, fid, lock=True), "fund", fund_id, etag, "fund.etag")
        merged = replace(FundFields(row.name, row.code, row.description, row.restriction, row.status),
                         **{a: getattr(patch, a) for a in attrs})
        clean = rules.normalize(merged, "fund", v, attrs)
        v.raise_if_any()
        values = {a: getattr(clean, a) for a in attrs}
        if all(getattr(row, a) == val for a, val in values.items()):
            return row
        updated = await store.update(uow.conn, org, fid, values)
        uow.audit_change("crm.fund.update", "fund", str(fid), _audited(row), _audited(updated))
        return updated


async def fund_totals(db: Database, org: uuid.UUID, fund_id: str, start: date | None, end: date | None,
                      unit: str | None) -> list[FundTotal]:
    v = Violations()
    fid = parse_optional_id(fund_id, "fund_id", v)
    if start is None:
        v.add("start_date", "is required")
    if end is None:
        v.add("end_date", "is required")
    if start and end and start > end:
        v.add("end_date", "must not be before start_date")
    elif start and end and (end - start).days > 3660:
        v.add("end_date", "must be at most 10 years after start_date")
    if unit is not None and unit not in PERIODS:
        v.add("period", "is not a known period")
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        if fid is not None and await store.get(uow.conn, org, fid) is None:
            raise InvalidArgument.field("fund_id", "no such fund")
        return await store.totals(uow.conn, org, fid, start, end, unit or "month")


# -- a gift's split ---------------------------------------------------------------------------


def check_new(items: list[AllocationInput], amount: Decimal | None, currency: str, v: Violations,
              path: str = "donation.allocations") -> list[Allocation]:
    split = rules.check_split(items, path, v)
    rules.check_against_gift(items, amount, currency, path, v)
    return split


async def allocate_on_record(uow: UnitOfWork, org: uuid.UUID, gift: Donation, split: list[Allocation],
                             path: str = "donation.allocations") -> None:
    v = Violations()
    rules.check_open(await store.statuses(uow.conn, org, [a.fund_id for a in split]), split, path, v)
    v.raise_if_any()
    await store.allocate(uow.conn, org, gift.id, split)
    gift.allocations = [GiftAllocation(a.fund_id, a.amount, Decimal(0)) for a in split]


async def set_allocations(db: Database, org: uuid.UUID, donation_id: str, etag: str,
                          items: list[AllocationInput]) -> Donation:
    v = Violations()
    gid = parse_id(donation_id, "donation_id", v)
    split = rules.check_split(items, "allocations", v)
    v.raise_if_any()
    assert gid is not None
    async with db.unit_of_work(org) as uow:
        row, _, _ = await lock_gift(uow, org, gid)
        check_etag(etag, row.version, "donation", "etag")
        rules.check_against_gift(items, row.amount, row.currency, "allocations", v)
        v.raise_if_any()
        before = (await store.of_gifts(uow.conn, org, [gid])).get(gid, [])
        if sorted((a.fund_id, a.amount) for a in before) == sorted((a.fund_id, a.amount) for a in split):
            row.allocations = before
            return row  # the same split: nothing written
        new_funds = [a for a in split if a.fund_id not in {b.fund_id for b in before}]
        statuses = await store.statuses(uow.conn, org, [a.fund_id for a in split])
        rules.check_open(statuses, new_funds, "allocations", v)  # a closed fund keeps what it has
        for i, a in enumerate(split):
            if a.fund_id not in statuses:
                v.add(f"allocations[{i}].fund_id", "no such fund")
        v.raise_if_any()
        await store.clear(uow.conn, org, gid)
        if split:
            await store.allocate(uow.conn, org, gid, split,
                                 rules.share(row.refunded_amount, [a.amount for a in split]))
        updated = await gift_store.touch(uow.conn, org, gid)
        await attach(uow, org, [updated])
        uow.audit("crm.donation.allocations", "donation", str(gid),
                  before={"allocations": [_alloc(a) for a in before]},
                  after={"allocations": [_alloc(a) for a in updated.allocations]})
        return updated


def _alloc(a: GiftAllocation) -> dict:
    return {"fund_id": str(a.fund_id), "amount": a.amount, "refunded_amount": a.refunded_amount}


async def follow_gift(uow: UnitOfWork, org: uuid.UUID, gift: Donation) -> None:
    """After a refund or a corrected amount: the split carries the gift's amount (rescaled in
    proportion when it changed) and its refunds (shared in proportion), exactly."""
    split = (await store.of_gifts(uow.conn, org, [gift.id])).get(gift.id, [])
    if not split:
        return
    amounts = [a.amount for a in split]
    if sum(amounts) != gift.amount:
        amounts = rules.rescale(amounts, gift.amount, str(gift.id))
    await store.set_shares(uow.conn, org, gift.id, [a.fund_id for a in split], amounts,
                           rules.share(gift.refunded_amount, amounts))


async def attach(uow: UnitOfWork, org: uuid.UUID, gifts: list[Donation]) -> None:
    found = await store.of_gifts(uow.conn, org, [g.id for g in gifts])
    for g in gifts:
        g.allocations = found.get(g.id, [])
