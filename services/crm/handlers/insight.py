"""Giving insight use cases (read-only). Each read of donor financial data is audited
(ReadAudit queues it; the entries are written in batches)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from chassis.audit import ReadAudit
from chassis.db import Database
from chassis.errors import NotFound, Violations
from chassis.resource import Keyset, parse_id
from services.crm.domain import insight as rules
from services.crm.store import insight as store
from services.crm.store.insight import DonorGiving, DonorRfm, LybuntDonor, SybuntDonor, YearTotal


@dataclass
class Period:
    start_date: date
    end_date: date
    total: Decimal
    gift_count: int
    donor_count: int
    average_gift: Decimal
    previous_donor_count: int
    retained_donor_count: int
    retention_rate: Decimal | None
    pledged: Decimal = Decimal(0)
    pledge_count: int = 0
    pledge_received: Decimal = Decimal(0)


def _amount(text: str) -> Decimal:
    """A page token's amount (a forged one is ValueError, which the page reads as a bad token)."""
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ValueError(text) from None


async def get_donor_giving(db: Database, reads: ReadAudit, org: uuid.UUID, donor_id: str,
                           currency: str) -> tuple[DonorGiving, list[YearTotal], str]:
    v = Violations()
    cur = rules.currency(currency, "currency_code", v)
    v.raise_if_any()
    did = parse_id(donor_id, "donor_id")
    async with db.unit_of_work(org) as uow:
        if not await store.donor_exists(uow.conn, org, did):
            raise NotFound(f"donor {donor_id} not found")
        head, years = await store.donor_giving(uow.conn, org, did, cur)
    reads.record("crm.insight.donor_giving", "donor", str(did), after={"currency": cur})
    return head, years, cur


async def _lapsed(kind: str, db: Database, reads: ReadAudit, org: uuid.UUID, year: int, currency: str,
                  page_size: int, page_token: str) -> tuple[list[LybuntDonor] | list[SybuntDonor], str, str]:
    v = Violations()
    rules.year(year, "year", v)
    cur = rules.currency(currency, "currency_code", v)
    v.raise_if_any()
    page = Keyset.of(page_size, page_token, (kind, year, cur), (_amount, uuid.UUID))
    query, key = (store.lybunt, "last_year_total") if kind == "lybunt" else (store.sybunt, "lifetime_total")
    async with db.unit_of_work(org) as uow:
        rows = await query(uow.conn, org, year, cur, page.after, page.limit)
    rows, token = page.cut(rows, lambda r: (getattr(r, key), r.donor_id))
    reads.record(f"crm.insight.{kind}", "donor", "", after={"year": year, "currency": cur, "returned": len(rows)})
    return rows, token, cur


async def list_lybunt(db: Database, reads: ReadAudit, org: uuid.UUID, year: int, currency: str, page_size: int,
                      page_token: str) -> tuple[list[LybuntDonor], str, str]:
    return await _lapsed("lybunt", db, reads, org, year, currency, page_size, page_token)


async def list_sybunt(db: Database, reads: ReadAudit, org: uuid.UUID, year: int, currency: str, page_size: int,
                      page_token: str) -> tuple[list[SybuntDonor], str, str]:
    return await _lapsed("sybunt", db, reads, org, year, currency, page_size, page_token)


async def list_rfm(db: Database, reads: ReadAudit, org: uuid.UUID, as_of: date, currency: str, page_size: int,
                   page_token: str) -> tuple[list[DonorRfm], str, str]:
    v = Violations()
    rules.year(as_of.year, "as_of", v)
    cur = rules.currency(currency, "currency_code", v)
    v.raise_if_any()
    page = Keyset.of(page_size, page_token, ("rfm", as_of.isoformat(), cur), (str, uuid.UUID))
    async with db.unit_of_work(org) as uow:
        rows = await store.rfm(uow.conn, org, as_of, cur, page.after, page.limit)
    rows, token = page.cut(rows, lambda r: (r.score, r.donor_id))
    reads.record("crm.insight.rfm", "donor", "", after={"as_of": as_of.isoformat(), "currency": cur,
                                                          "returned": len(rows)})
    return rows, token, cur


async def giving_summary(db: Database, reads: ReadAudit, org: uuid.UUID, unit: str, start: date | None,
                         end: date | None, currency: str) -> tuple[list[Period], str]:
    """start/end are None when missing or unreadable (the api layer names those fields)."""
    v = Violations()
    cur = rules.currency(currency, "currency_code", v)
    for name, d in (("start_date", start), ("end_date", end)):
        if d is not None:
            rules.year(d.year, name, v)
    if not v:
        rules.check_range(unit, start, end, v)
    v.raise_if_any()
    assert start is not None and end is not None
    async with db.unit_of_work(org) as uow:
        rows = await store.summary(uow.conn, org, unit, start, end, cur)
    reads.record("crm.insight.giving_summary", "organization", str(org),
                 after={"period": unit, "start": start.isoformat(), "end": end.isoformat(), "currency": cur})
    out = [Period(start_date=r.period_start, end_date=r.period_end, total=Decimal(r.total),
                  gift_count=r.gift_count, donor_count=r.donor_count,
                  average_gift=rules.average(Decimal(r.total), r.gift_count),
                  previous_donor_count=r.previous_donor_count, retained_donor_count=r.retained_donor_count,
                  retention_rate=rules.retention(r.retained_donor_count, r.previous_donor_count),
                  pledged=Decimal(r.pledged), pledge_count=r.pledge_count, pledge_received=Decimal(r.pledge_received))
           for r in rows]
    return out, cur
