"""Donation use cases: record a gift (with totals and its event), list gifts."""

from __future__ import annotations

import uuid
from datetime import date

from givance.events.v1 import crm_events_pb2

from chassis import paging
from chassis.audit import ReadAudit
from chassis.convert import date as date_pb
from chassis.convert import money
from chassis.db import Database
from chassis.errors import InvalidArgument, NotFound, Violations
from chassis.ids import parse_id
from services.crm.domain import donations as rules
from services.crm.domain import projects as project_rules
from services.crm.store import donations as store
from services.crm.store import projects as project_store


async def record_donation(db: Database, org: uuid.UUID, d: rules.DonationFields, request_id: str) -> dict:
    v = Violations()
    donor_id = _id(d.donor_id, "donation.donor_id", v, required=True)
    project_id = _id(d.project_id, "donation.project_id", v, required=False)
    rules.check_amount(d.amount, d.currency, "donation.amount", v)
    rules.check_recurrence(d.is_recurring, d.recurring_frequency, "donation", v)
    if d.payment_method is not None and d.payment_method not in rules.PAYMENT_METHODS:
        v.add("donation.payment_method", "is not a known payment method")
    if d.reference_number and len(d.reference_number) > 200:
        v.add("donation.reference_number", "must be at most 200 characters")
    if len(request_id) > 100:
        v.add("request_id", "must be at most 100 characters")
    v.raise_if_any()

    async with db.unit_of_work(org) as uow:
        if project_id:
            status = await project_store.status_for_gift(uow.conn, org, project_id)
            if status is None:
                raise InvalidArgument.field("donation.project_id", "no such project")
            project_rules.check_accepts_gifts(status, str(project_id))
        values = {
            "donor_id": donor_id, "project_id": project_id, "amount": d.amount, "currency": d.currency,
            "date": d.date, "payment_method": d.payment_method, "reference_number": d.reference_number,
            "notes": d.notes, "is_recurring": d.is_recurring, "recurring_frequency": d.recurring_frequency,
            "tax_deductible": d.tax_deductible,
        }
        row = await store.record(uow.conn, org, uuid.uuid4(), values, request_id or None)
        if row is None:
            if request_id:
                first = await store.by_request_id(uow.conn, org, request_id)
                if first is not None:
                    return first  # AIP-155: a retry returns the first result, records nothing
            raise NotFound(f"donor {d.donor_id} not found")
        uow.publish(
            "crm.donation.recorded",
            crm_events_pb2.DonationRecordedEvent(
                donation_id=str(row["id"]), donor_id=str(row["donor_id"]),
                project_id=str(row["project_id"] or ""), amount=money(row["amount"], row["currency"]),
                date=date_pb(row["date"]), payment_method=row["payment_method"] or "",
                is_recurring=row["is_recurring"],
            ),
            aggregate_type="donor", aggregate_id=str(row["donor_id"]),
        )
        uow.audit("crm.donation.record", "donation", str(row["id"]), after={
            k: row[k] for k in ("donor_id", "project_id", "amount", "currency", "date", "payment_method",
                                "reference_number", "is_recurring", "recurring_frequency", "tax_deductible")})
        return row


def _id(value: str | None, field: str, v: Violations, *, required: bool) -> uuid.UUID | None:
    if not value:
        if required:
            v.add(field, "is required")
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        v.add(field, "is not a valid id")
        return None


async def list_donations(db: Database, reads: ReadAudit, org: uuid.UUID, donor_id: str, page_size: int,
                         page_token: str) -> tuple[list[dict], str]:
    size = paging.page_size(page_size)
    did = parse_id(donor_id, "donor_id") if donor_id else None
    fp = paging.fingerprint("donations", donor_id)
    after = paging.decode_keyset(page_token, fp, date.fromisoformat, uuid.UUID)
    async with db.unit_of_work(org) as uow:
        rows = await store.page(uow.conn, org, donor_id=did, after=after, limit=size + 1)
    # Gifts are donor financial data: the read is audited (in a batch).
    reads.record("crm.donation.list", "donor", str(did) if did else "", after={"returned": min(len(rows), size)})
    return paging.trim(rows, size, lambda r: (r["date"], r["id"]), fp)
