"""Donation use cases: record a gift (with totals and its event), list and read gifts, correct
and refund them (with history, net totals and events), receipts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal

from givance.events.v1 import crm_events_pb2

from chassis.audit import ReadAudit
from chassis.convert import date as date_pb
from chassis.convert import money
from chassis.db import Database
from chassis.errors import Aborted, InvalidArgument, NotFound, Violations
from chassis.resource import Keyset, check_etag, check_request_id, expand_mask, parse_id, parse_optional_id
from services.crm.domain import donations as rules
from services.crm.domain import pledges as pledge_rules
from services.crm.domain import projects as project_rules
from services.crm.domain import tributes as tribute_rules
from services.crm.domain.donations import DonationFields
from services.crm.handlers import funds, gift_extras, pledges, soft_credits, tax_receipts
from services.crm.store import donations as store
from services.crm.store import projects as project_store
from services.crm.store.donations import Donation, Refund, Revision


async def record_donation(db: Database, org: uuid.UUID, d: DonationFields, request_id: str) -> Donation:
    v = Violations()
    checked = check_record(d, v)
    check_request_id(request_id, v)
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        return await record_in(uow, org, d, checked, request_id)


@dataclass(frozen=True)
class CheckedGift:
    donor_id: uuid.UUID | None
    project_id: uuid.UUID | None
    credits: list
    split: list
    pledge_id: uuid.UUID | None = None
    tribute: tribute_rules.Tribute | None = None


def check_record(d: DonationFields, v: Violations) -> CheckedGift:
    """A new gift's own rules, its soft credits' and its split's (violations collected in v)."""
    donor_id = parse_id(d.donor_id, "donation.donor_id", v)
    project_id = parse_optional_id(d.project_id, "donation.project_id", v)
    rules.check_gift(d, v)
    credits = soft_credits.check_new(d.soft_credits, donor_id, d.amount, d.currency, v) if d.soft_credits else []
    split = funds.check_new(d.allocations, d.amount, d.currency, v) if d.allocations else []
    pledge_id = parse_optional_id(d.pledge_id or "", "donation.pledge_id", v)
    tribute = tribute_rules.check(d.tribute, "donation.tribute", v) if d.tribute is not None else None
    return CheckedGift(donor_id, project_id, credits, split, pledge_id, tribute)


async def record_in(uow, org: uuid.UUID, d: DonationFields, checked: CheckedGift, request_id: str) -> Donation:
    """Record a checked gift in the caller's unit of work (RecordDonation, a batch's posting)."""
    donor_id, project_id, credits, split = checked.donor_id, checked.project_id, checked.credits, checked.split
    if credits:  # a plain gift takes none of this: its one statement locks its donor
        await soft_credits.lock_for_record(uow, org, donor_id, credits)
    if project_id:
        status = await project_store.status_for_gift(uow.conn, org, project_id)
        if status is None:
            raise InvalidArgument.field("donation.project_id", "no such project")
        project_rules.check_accepts_gifts(status, str(project_id))
    if checked.pledge_id:
        await pledges.check_exists(uow, org, checked.pledge_id)
    values = {
        "donor_id": donor_id, "project_id": project_id, "amount": d.amount, "currency": d.currency,
        "date": d.date, "payment_method": d.payment_method, "reference_number": d.reference_number,
        "notes": d.notes, "is_recurring": d.is_recurring, "recurring_frequency": d.recurring_frequency,
        "tax_deductible": d.tax_deductible,
        "next_expected_date": rules.next_expected_date(d.date, d.is_recurring, d.recurring_frequency),
        "pledge_id": checked.pledge_id,
    }
    row = await store.record(uow.conn, org, uuid.uuid4(), values, request_id or None)
    if row is None:
        if request_id:
            first = await store.by_request_id(uow.conn, org, request_id)
            if first is not None:
                await details(uow, org, [first])
                return first  # AIP-155: a retry returns the first result, records nothing
        raise NotFound(f"donor {d.donor_id} not found")
    if credits:
        await soft_credits.add_on_record(uow, org, row, credits)
    if split:
        await funds.allocate_on_record(uow, org, row, split)
    if row.pledge_id:
        await pledges.apply_on_record(uow, org, row)
    contact = await store.thank_you_contact(uow.conn, org, row.donor_id)
    if checked.tribute is not None:
        await gift_extras.add_tribute(uow, org, row, checked.tribute, contact)
    uow.publish(
        "crm.donation.recorded",
        crm_events_pb2.DonationRecordedEvent(
            donation_id=str(row.id), donor_id=str(row.donor_id),
            project_id=str(row.project_id or ""), amount=money(row.amount, row.currency),
            date=date_pb(row.date), payment_method=row.payment_method or "",
            is_recurring=row.is_recurring, donor_email=contact["email"] or "",
            donor_first_name=contact["first_name"] or "", donor_last_name=contact["last_name"] or "",
            first_gift=contact["gifts"] <= 1,
        ),
        aggregate_type="donor", aggregate_id=str(row.donor_id),
    )
    uow.audit("crm.donation.record", "donation", str(row.id), after={
        k: getattr(row, k) for k in ("donor_id", "project_id", "amount", "currency", "date", "payment_method",
                            "reference_number", "is_recurring", "recurring_frequency", "tax_deductible")})
    return row


async def details(uow, org: uuid.UUID, gifts: list[Donation]) -> None:
    """Read the gifts' soft credits, split, live receipt number and tribute."""
    await soft_credits.attach(uow, org, gifts)
    await funds.attach(uow, org, gifts)
    await gift_extras.attach(uow, org, gifts)


@dataclass
class ListDonations:
    donor_id: str = ""
    page_size: int = 0
    page_token: str = ""
    project_id: str = ""
    recurring_only: bool = False
    start_date: date | None = None
    end_date: date | None = None


async def list_donations(db: Database, reads: ReadAudit, org: uuid.UUID,
                         q: ListDonations) -> tuple[list[Donation], str]:
    v = Violations()
    did = parse_optional_id(q.donor_id, "donor_id", v)
    pid = parse_optional_id(q.project_id, "project_id", v)
    if q.start_date and q.end_date and q.start_date > q.end_date:
        v.add("end_date", "must not be before start_date")
    v.raise_if_any()
    page = Keyset.of(q.page_size, q.page_token,
                     ("donations", q.donor_id, q.project_id, q.recurring_only, q.start_date, q.end_date),
                     (date.fromisoformat, uuid.UUID))
    async with db.unit_of_work(org) as uow:
        rows = await store.page(uow.conn, org, donor_id=did, after=page.after, limit=page.limit, project_id=pid,
                                recurring_only=q.recurring_only, start=q.start_date, end=q.end_date)
        await details(uow, org, rows)
    # Gifts are donor financial data: the read is audited (in a batch).
    reads.record("crm.donation.list", "donor", str(did) if did else "",
                 after={"returned": min(len(rows), page.size)})
    return page.cut(rows, lambda r: (r.date, r.id))


async def get_donation(db: Database, reads: ReadAudit, org: uuid.UUID,
                       donation_id: str) -> tuple[Donation, list[Refund]]:
    gid = parse_id(donation_id, "id")
    async with db.unit_of_work(org) as uow:
        row = await store.get(uow.conn, org, gid)
        if row is None:
            raise NotFound(f"donation {donation_id} not found")
        refunds = await store.refunds(uow.conn, org, gid)
        await details(uow, org, [row])
    reads.record("crm.donation.get", "donation", str(gid))
    return row, refunds


def _fields_of(row: Donation) -> DonationFields:
    return DonationFields(
        donor_id=str(row.donor_id), project_id=str(row.project_id) if row.project_id else None,
        amount=row.amount, currency=row.currency, date=row.date, payment_method=row.payment_method,
        reference_number=row.reference_number, notes=row.notes, is_recurring=row.is_recurring,
        recurring_frequency=row.recurring_frequency, tax_deductible=row.tax_deductible,
    )


async def update_donation(db: Database, org: uuid.UUID, donation_id: str, etag: str, patch: DonationFields,
                          mask: list[str], reason: str, actor: str | None) -> Donation:
    gid = parse_id(donation_id, "donation.id")
    v = Violations()
    attrs = expand_mask(mask, rules.UPDATE_PATHS, "update_mask", v)
    reason = (reason or "").strip()
    if not reason:
        v.add("reason", "is required: say why the gift is corrected")
    elif len(reason) > rules.MAX_REASON:
        v.add("reason", f"must be at most {rules.MAX_REASON} characters")
    new_donor = parse_id(patch.donor_id, "donation.donor_id", v) if "donor_id" in attrs else None
    if "project_id" in attrs:
        parse_optional_id(patch.project_id, "donation.project_id", v)
    v.raise_if_any()

    async with db.unit_of_work(org) as uow:
        row, donors, soft = await soft_credits.lock_gift(uow, org, gid, [new_donor] if new_donor else None)
        check_etag(etag, row.version, "donation", "donation.etag")
        current = _fields_of(row)
        merged = replace(current, **{a: getattr(patch, a) for a in attrs})
        if not merged.is_recurring and "recurring_frequency" not in attrs:
            merged = replace(merged, recurring_frequency=None)  # a gift no longer recurring has no frequency
        rules.check_gift(merged, v)
        if new_donor is not None and not donors.get(new_donor):
            v.add("donation.donor_id", "no such donor")
        v.raise_if_any()
        project_id = uuid.UUID(merged.project_id) if merged.project_id else None
        if project_id and project_id != row.project_id:
            status = await project_store.status_for_gift(uow.conn, org, project_id)
            if status is None:
                raise InvalidArgument.field("donation.project_id", "no such project")
            project_rules.check_accepts_gifts(status, str(project_id))
        rules.check_correction(merged.amount, merged.currency, row.currency, row.refunded_amount, str(gid))
        if row.pledge_id:
            pledge_rules.check_payment_correction(uuid.UUID(merged.donor_id) != row.donor_id,
                                                  merged.currency != row.currency, str(gid))
        if soft and merged.amount < row.amount:
            await soft_credits.before_correction(uow, org, gid, merged.amount)

        values = {
            "donor_id": uuid.UUID(merged.donor_id), "project_id": project_id,
            "amount": merged.amount.quantize(Decimal("0.01")),
            "currency": merged.currency, "date": merged.date, "payment_method": merged.payment_method,
            "reference_number": merged.reference_number, "notes": merged.notes, "is_recurring": merged.is_recurring,
            "recurring_frequency": merged.recurring_frequency, "tax_deductible": merged.tax_deductible,
        }
        values["next_expected_date"] = rules.next_expected_date(merged.date, merged.is_recurring,
                                                                merged.recurring_frequency)
        changed = [p for p, cols in rules.UPDATE_PATHS.items() if any(values[c] != getattr(row, c) for c in cols)]
        if not changed:
            await details(uow, org, [row])
            return row  # nothing to correct: nothing written
        cols = [c for p in changed for c in rules.UPDATE_PATHS[p]]
        before = {c: getattr(row, c) for c in cols}
        after = {c: values[c] for c in cols}
        updated = await store.update(uow.conn, org, gid, values)
        revision = await store.insert_revision(uow.conn, org, gid, changed, before, after, reason, actor)
        if {"amount", "date", "donor_id"} & set(changed):
            await store.recompute_giving(uow.conn, org, [(row.donor_id, row.currency),
                                                         (updated.donor_id, updated.currency)])
            await soft_credits.after_correction(uow, org, row, updated, soft)
        if updated.amount != row.amount:
            await funds.follow_gift(uow, org, updated)
        await pledges.follow_gift(uow, org, updated)
        await tax_receipts.follow_gift(uow, org, row, updated, reason)
        await details(uow, org, [updated])
        moved = updated.donor_id != row.donor_id
        uow.publish(
            "crm.donation.updated",
            crm_events_pb2.DonationUpdatedEvent(
                donation_id=str(gid), donor_id=str(updated.donor_id),
                previous_donor_id=str(row.donor_id) if moved else "", changed_fields=changed,
                revision=revision, reason=reason, amount=money(updated.amount, updated.currency),
                date=date_pb(updated.date),
            ),
            aggregate_type="donor", aggregate_id=str(updated.donor_id),
        )
        uow.audit("crm.donation.update", "donation", str(gid), before=before,
                  after={**after, "reason": reason, "revision": revision})
        return updated


async def refund_donation(db: Database, org: uuid.UUID, donation_id: str, amount: Decimal | None, currency: str,
                          reason: str, refund_date: date | None, request_id: str, actor: str | None,
                          ) -> tuple[Donation, Refund]:
    v = Violations()
    gid = parse_id(donation_id, "donation_id", v)
    if amount is not None:
        rules.check_amount(amount, currency, "amount", v)
    reason = (reason or "").strip()
    if not reason:
        v.add("reason", "is required")
    elif len(reason) > rules.MAX_REASON:
        v.add("reason", f"must be at most {rules.MAX_REASON} characters")
    check_request_id(request_id, v)
    v.raise_if_any()
    assert gid is not None

    async with db.unit_of_work(org) as uow:
        if request_id:
            first = await store.refund_by_request_id(uow.conn, org, request_id)
            if first is not None:  # AIP-155: a retry returns the first result, refunds nothing
                gift = await store.get(uow.conn, org, first.donation_id)
                await details(uow, org, [gift])
                return gift, first
        # FOR UPDATE on the gift: two refunds racing on it run one after the other, and the
        # second sees what the first refunded.
        row, _, soft = await soft_credits.lock_gift(uow, org, gid)
        if amount is not None and currency != row.currency:
            raise InvalidArgument.field("amount.currency_code", f"must be the gift's currency, {row.currency}")
        when = refund_date or datetime.now(UTC).date()
        if when < row.date:
            raise InvalidArgument.field("refund_date", f"must not be before the gift's date, {row.date}")
        take = rules.refund_amount(amount, row.amount, row.refunded_amount, str(gid))
        refund = await store.insert_refund(uow.conn, org, uuid.uuid4(), gid, take, row.currency, reason, when,
                                           request_id or None, actor)
        if refund is None:  # the same request_id, committed by a concurrent call meanwhile
            raise Aborted("a refund with this request_id was made concurrently; retry to read it",
                          reason="CONCURRENT_REQUEST")
        updated = await store.add_refunded(uow.conn, org, gid, take)
        await store.recompute_giving(uow.conn, org, [(updated.donor_id, updated.currency)])
        await soft_credits.after_refund(uow, org, updated, soft)
        await funds.follow_gift(uow, org, updated)
        await pledges.follow_gift(uow, org, updated)
        await tax_receipts.follow_gift(uow, org, row, updated, reason)
        await details(uow, org, [updated])
        remaining = updated.amount - updated.refunded_amount
        uow.publish(
            "crm.donation.refunded",
            crm_events_pb2.DonationRefundedEvent(
                refund_id=str(refund.id), donation_id=str(gid), donor_id=str(updated.donor_id),
                amount=money(take, updated.currency),
                refunded_amount=money(updated.refunded_amount, updated.currency),
                remaining_amount=money(remaining, updated.currency), reason=reason,
                refund_date=date_pb(when), fully_refunded=remaining <= 0,
            ),
            aggregate_type="donor", aggregate_id=str(updated.donor_id),
        )
        uow.audit("crm.donation.refund", "donation", str(gid),
                  before={"refunded_amount": row.refunded_amount},
                  after={"refunded_amount": updated.refunded_amount, "refund_id": str(refund.id),
                         "amount": take, "currency": updated.currency, "reason": reason, "refund_date": when})
        return updated, refund


async def list_revisions(db: Database, reads: ReadAudit, org: uuid.UUID, donation_id: str, page_size: int,
                         page_token: str) -> tuple[list[Revision], str]:
    gid = parse_id(donation_id, "donation_id")
    page = Keyset.of(page_size, page_token, ("donation_revisions", str(gid)), (int,))
    async with db.unit_of_work(org) as uow:
        if await store.get(uow.conn, org, gid) is None:
            raise NotFound(f"donation {donation_id} not found")
        rows = await store.revisions_page(uow.conn, org, gid, page.after[0] if page.after else None, page.limit)
    reads.record("crm.donation.revisions", "donation", str(gid), after={"returned": min(len(rows), page.size)})
    return page.cut(rows, lambda r: (r.revision,))
