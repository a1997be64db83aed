"""Donation use cases: record a gift (with totals and its event), list and read gifts, correct
and refund them (with history, net totals and events), receipts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal

from givance.events.v1 import crm_events_pb2

from chassis import paging
from chassis.audit import ReadAudit
from chassis.convert import date as date_pb
from chassis.convert import money
from chassis.db import Database
from chassis.errors import Aborted, InvalidArgument, NotFound, Violations
from chassis.ids import parse_id
from services.crm.domain import donations as rules
from services.crm.domain import projects as project_rules
from services.crm.store import donations as store
from services.crm.store import projects as project_store


async def record_donation(db: Database, org: uuid.UUID, d: rules.DonationFields, request_id: str) -> dict:
    v = Violations()
    donor_id = _id(d.donor_id, "donation.donor_id", v, required=True)
    project_id = _id(d.project_id, "donation.project_id", v, required=False)
    rules.check_gift(d, v)
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
            "next_expected_date": rules.next_expected_date(d.date, d.is_recurring, d.recurring_frequency),
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


@dataclass
class ListDonations:
    donor_id: str = ""
    page_size: int = 0
    page_token: str = ""
    project_id: str = ""
    recurring_only: bool = False
    start_date: date | None = None
    end_date: date | None = None


async def list_donations(db: Database, reads: ReadAudit, org: uuid.UUID, q: ListDonations) -> tuple[list[dict], str]:
    size = paging.page_size(q.page_size)
    v = Violations()
    did = _id(q.donor_id, "donor_id", v, required=False)
    pid = _id(q.project_id, "project_id", v, required=False)
    if q.start_date and q.end_date and q.start_date > q.end_date:
        v.add("end_date", "must not be before start_date")
    v.raise_if_any()
    fp = paging.fingerprint("donations", q.donor_id, q.project_id, q.recurring_only, q.start_date, q.end_date)
    after = paging.decode_keyset(q.page_token, fp, date.fromisoformat, uuid.UUID)
    async with db.unit_of_work(org) as uow:
        rows = await store.page(uow.conn, org, donor_id=did, after=after, limit=size + 1, project_id=pid,
                                recurring_only=q.recurring_only, start=q.start_date, end=q.end_date)
    # Gifts are donor financial data: the read is audited (in a batch).
    reads.record("crm.donation.list", "donor", str(did) if did else "", after={"returned": min(len(rows), size)})
    return paging.trim(rows, size, lambda r: (r["date"], r["id"]), fp)


async def get_donation(db: Database, reads: ReadAudit, org: uuid.UUID, donation_id: str) -> tuple[dict, list[dict]]:
    gid = parse_id(donation_id, "id")
    async with db.unit_of_work(org) as uow:
        row = await store.get(uow.conn, org, gid)
        if row is None:
            raise NotFound(f"donation {donation_id} not found")
        refunds = await store.refunds(uow.conn, org, gid)
    reads.record("crm.donation.get", "donation", str(gid))
    return row, refunds


def check_etag(row: dict, etag: str, field: str) -> None:
    if etag and etag != rules.etag(row["version"]):
        raise Aborted(f"the donation changed since it was read ({field} is stale); read it again",
                      reason="ETAG_MISMATCH")


async def _lock_gift(uow, org: uuid.UUID, gid: uuid.UUID, also_donor: uuid.UUID | None = None,
                     ) -> tuple[dict, dict[uuid.UUID, bool]]:
    """Lock the gift's donor (and also_donor), then the gift: the same order as a merge and a new
    gift take, so concurrent writers wait rather than deadlock or miss each other in totals."""
    for _ in range(5):
        donor = await store.donor_of(uow.conn, org, gid)
        if donor is None:
            raise NotFound(f"donation {gid} not found")
        donors = await store.lock_donors(uow.conn, org, [donor] + ([also_donor] if also_donor else []))
        row = await store.get_for_update(uow.conn, org, gid)
        if row is not None and row["donor_id"] == donor:
            return row, donors
        # The gift moved to another donor between the read and the lock: take that donor's lock.
    raise Aborted(f"donation {gid} is being changed concurrently; try again", reason="CONCURRENT_CHANGE")


def _fields_of(row: dict) -> rules.DonationFields:
    return rules.DonationFields(
        donor_id=str(row["donor_id"]), project_id=str(row["project_id"]) if row["project_id"] else None,
        amount=row["amount"], currency=row["currency"], date=row["date"], payment_method=row["payment_method"],
        reference_number=row["reference_number"], notes=row["notes"], is_recurring=row["is_recurring"],
        recurring_frequency=row["recurring_frequency"], tax_deductible=row["tax_deductible"],
    )


async def update_donation(db: Database, org: uuid.UUID, donation_id: str, etag: str, patch: rules.DonationFields,
                          mask: list[str], reason: str, actor: str | None) -> dict:
    gid = parse_id(donation_id, "donation.id")
    v = Violations()
    attrs = rules.expand_mask(mask, "update_mask", v)
    reason = (reason or "").strip()
    if not reason:
        v.add("reason", "is required: say why the gift is corrected")
    elif len(reason) > rules.MAX_REASON:
        v.add("reason", f"must be at most {rules.MAX_REASON} characters")
    new_donor = _id(patch.donor_id, "donation.donor_id", v, required=True) if "donor_id" in attrs else None
    if "project_id" in attrs:
        _id(patch.project_id, "donation.project_id", v, required=False)
    v.raise_if_any()

    async with db.unit_of_work(org) as uow:
        row, donors = await _lock_gift(uow, org, gid, new_donor)
        check_etag(row, etag, "donation.etag")
        current = _fields_of(row)
        merged = replace(current, **{a: getattr(patch, a) for a in attrs})
        if not merged.is_recurring and "recurring_frequency" not in attrs:
            merged = replace(merged, recurring_frequency=None)  # a gift no longer recurring has no frequency
        rules.check_gift(merged, v)
        if new_donor is not None and not donors.get(new_donor):
            v.add("donation.donor_id", "no such donor")
        v.raise_if_any()
        project_id = uuid.UUID(merged.project_id) if merged.project_id else None
        if project_id and project_id != row["project_id"]:
            status = await project_store.status_for_gift(uow.conn, org, project_id)
            if status is None:
                raise InvalidArgument.field("donation.project_id", "no such project")
            project_rules.check_accepts_gifts(status, str(project_id))
        rules.check_correction(merged.amount, merged.currency, row["currency"], row["refunded_amount"], str(gid))

        values = {
            "donor_id": uuid.UUID(merged.donor_id), "project_id": project_id,
            "amount": merged.amount.quantize(Decimal("0.01")),
            "currency": merged.currency, "date": merged.date, "payment_method": merged.payment_method,
            "reference_number": merged.reference_number, "notes": merged.notes, "is_recurring": merged.is_recurring,
            "recurring_frequency": merged.recurring_frequency, "tax_deductible": merged.tax_deductible,
        }
        values["next_expected_date"] = rules.next_expected_date(merged.date, merged.is_recurring,
                                                                merged.recurring_frequency)
        changed = [p for p, cols in rules.UPDATE_PATHS.items() if any(values[c] != row[c] for c in cols)]
        if not changed:
            return row  # nothing to correct: nothing written
        cols = [c for p in changed for c in rules.UPDATE_PATHS[p]]
        before = {c: row[c] for c in cols}
        after = {c: values[c] for c in cols}
        updated = await store.update(uow.conn, org, gid, values)
        revision = await store.insert_revision(uow.conn, org, gid, changed, before, after, reason, actor)
        if {"amount", "date", "donor_id"} & set(changed):
            await store.recompute_giving(uow.conn, org, [(row["donor_id"], row["currency"]),
                                                         (updated["donor_id"], updated["currency"])])
        moved = updated["donor_id"] != row["donor_id"]
        uow.publish(
            "crm.donation.updated",
            crm_events_pb2.DonationUpdatedEvent(
                donation_id=str(gid), donor_id=str(updated["donor_id"]),
                previous_donor_id=str(row["donor_id"]) if moved else "", changed_fields=changed,
                revision=revision, reason=reason, amount=money(updated["amount"], updated["currency"]),
                date=date_pb(updated["date"]),
            ),
            aggregate_type="donor", aggregate_id=str(updated["donor_id"]),
        )
        uow.audit("crm.donation.update", "donation", str(gid), before=before,
                  after={**after, "reason": reason, "revision": revision})
        return updated


async def refund_donation(db: Database, org: uuid.UUID, donation_id: str, amount: Decimal | None, currency: str,
                          reason: str, refund_date: date | None, request_id: str, actor: str | None,
                          ) -> tuple[dict, dict]:
    v = Violations()
    gid = _id(donation_id, "donation_id", v, required=True)
    if amount is not None:
        rules.check_amount(amount, currency, "amount", v)
    reason = (reason or "").strip()
    if not reason:
        v.add("reason", "is required")
    elif len(reason) > rules.MAX_REASON:
        v.add("reason", f"must be at most {rules.MAX_REASON} characters")
    if len(request_id) > 100:
        v.add("request_id", "must be at most 100 characters")
    v.raise_if_any()
    assert gid is not None

    async with db.unit_of_work(org) as uow:
        if request_id:
            first = await store.refund_by_request_id(uow.conn, org, request_id)
            if first is not None:  # AIP-155: a retry returns the first result, refunds nothing
                return await store.get(uow.conn, org, first["donation_id"]), first
        # FOR UPDATE on the gift: two refunds racing on it run one after the other, and the
        # second sees what the first refunded.
        row, _ = await _lock_gift(uow, org, gid)
        if amount is not None and currency != row["currency"]:
            raise InvalidArgument.field("amount.currency_code", f"must be the gift's currency, {row['currency']}")
        when = refund_date or datetime.now(UTC).date()
        if when < row["date"]:
            raise InvalidArgument.field("refund_date", f"must not be before the gift's date, {row['date']}")
        take = rules.refund_amount(amount, row["amount"], row["refunded_amount"], str(gid))
        refund = await store.insert_refund(uow.conn, org, uuid.uuid4(), gid, take, row["currency"], reason, when,
                                           request_id or None, actor)
        if refund is None:  # the same request_id, committed by a concurrent call meanwhile
            raise Aborted("a refund with this request_id was made concurrently; retry to read it",
                          reason="CONCURRENT_REQUEST")
        updated = await store.add_refunded(uow.conn, org, gid, take)
        await store.recompute_giving(uow.conn, org, [(updated["donor_id"], updated["currency"])])
        remaining = updated["amount"] - updated["refunded_amount"]
        uow.publish(
            "crm.donation.refunded",
            crm_events_pb2.DonationRefundedEvent(
                refund_id=str(refund["id"]), donation_id=str(gid), donor_id=str(updated["donor_id"]),
                amount=money(take, updated["currency"]),
                refunded_amount=money(updated["refunded_amount"], updated["currency"]),
                remaining_amount=money(remaining, updated["currency"]), reason=reason,
                refund_date=date_pb(when), fully_refunded=remaining <= 0,
            ),
            aggregate_type="donor", aggregate_id=str(updated["donor_id"]),
        )
        uow.audit("crm.donation.refund", "donation", str(gid),
                  before={"refunded_amount": row["refunded_amount"]},
                  after={"refunded_amount": updated["refunded_amount"], "refund_id": str(refund["id"]),
                         "amount": take, "currency": updated["currency"], "reason": reason, "refund_date": when})
        return updated, refund


async def list_revisions(db: Database, reads: ReadAudit, org: uuid.UUID, donation_id: str, page_size: int,
                         page_token: str) -> tuple[list[dict], str]:
    gid = parse_id(donation_id, "donation_id")
    size = paging.page_size(page_size)
    fp = paging.fingerprint("donation_revisions", str(gid))
    after = paging.decode_keyset(page_token, fp, int)
    async with db.unit_of_work(org) as uow:
        if await store.get(uow.conn, org, gid) is None:
            raise NotFound(f"donation {donation_id} not found")
        rows = await store.revisions_page(uow.conn, org, gid, after[0] if after else None, size + 1)
    reads.record("crm.donation.revisions", "donation", str(gid), after={"returned": min(len(rows), size)})
    return paging.trim(rows, size, lambda r: (r["revision"],), fp)


async def mark_receipts_sent(db: Database, org: uuid.UUID, donation_ids: list[str],
                             send_time: datetime | None) -> tuple[list[dict], int]:
    v = Violations()
    if not donation_ids:
        v.add("donation_ids", "name at least one donation")
    elif len(donation_ids) > rules.MAX_RECEIPT_IDS:
        v.add("donation_ids", f"must name at most {rules.MAX_RECEIPT_IDS} donations")
    ids: list[uuid.UUID] = []
    for i, raw in enumerate(donation_ids[:rules.MAX_RECEIPT_IDS + 1]):
        gid = _id(raw, f"donation_ids[{i}]", v, required=True)
        if gid is not None:
            ids.append(gid)
    v.raise_if_any()
    when = send_time or datetime.now(UTC)
    async with db.unit_of_work(org) as uow:
        found = await store.lock_many(uow.conn, org, ids)
        missing = [str(i) for i in dict.fromkeys(ids) if i not in found]
        if missing:  # all or nothing
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise NotFound(f"donations not found: {shown}; no receipt was marked")
        rows, marked = await store.mark_receipts(uow.conn, org, list(dict.fromkeys(ids)), when)
        for gid in marked:
            uow.audit("crm.donation.receipt_sent", "donation", str(gid), before={"receipt_sent": False},
                      after={"receipt_sent": True, "receipt_sent_date": when})
        return rows, len(marked)


async def receipt_summary(db: Database, reads: ReadAudit, org: uuid.UUID, donor_id: str,
                          year: int) -> list[dict]:
    v = Violations()
    did = _id(donor_id, "donor_id", v, required=True)
    if not 1900 <= year <= 9998:
        v.add("year", "must be a calendar year such as 2026")
    v.raise_if_any()
    assert did is not None
    async with db.unit_of_work(org) as uow:
        if not await store.donor_exists(uow.conn, org, did):
            raise NotFound(f"donor {donor_id} not found")
        totals = await store.receipt_summary(uow.conn, org, did, year)
    reads.record("crm.donation.receipt_summary", "donor", str(did), after={"year": year})
    return totals
