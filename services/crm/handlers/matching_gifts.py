"""Matching gifts: an employer's match of an employee's gift, pledged (CreateMatchingGift), then
received (ReceiveMatchingGift): the employer's own gift, recorded through RecordDonation's path
with a soft credit to the employee (role matched_employee), so every total stays exact."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from givance.events.v1 import crm_events_pb2

from chassis import sql
from chassis.convert import money
from chassis.db import Database, UnitOfWork
from chassis.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, Violations
from chassis.resource import Keyset, check_etag, check_request_id, parse_id, parse_optional_id
from services.crm.domain import donations as gift_rules
from services.crm.domain.donations import DonationFields
from services.crm.domain.soft_credits import SoftCreditInput
from services.crm.handlers.donations import check_record, record_in
from services.crm.store import donations as gift_store
from services.crm.store import donor_matching as merges
from services.crm.store import matching_gifts as store
from services.crm.store import soft_credits as credit_store
from services.crm.store.donations import Donation
from services.crm.store.matching_gifts import MatchingGift

__all__ = ["MatchInput", "MatchingGift"]


@dataclass(frozen=True)
class MatchInput:
    donation_id: str
    employer_donor_id: str
    amount: Decimal | None
    currency: str
    expected_date: date | None


def _publish(uow: UnitOfWork, kind: str, m: MatchingGift) -> None:
    uow.publish(f"crm.matching_gift.{kind}", crm_events_pb2.MatchingGiftEvent(
        matching_gift_id=str(m.id), donation_id=str(m.donation_id), employee_donor_id=str(m.employee_donor_id),
        employer_donor_id=str(m.employer_donor_id), amount=money(m.amount, m.currency),
        match_donation_id=str(m.match_donation_id or "")),
        aggregate_type="donor", aggregate_id=str(m.employer_donor_id))


async def create_match(db: Database, org: uuid.UUID, m: MatchInput, request_id: str) -> MatchingGift:
    v = Violations()
    gid = parse_id(m.donation_id, "matching_gift.donation_id", v)
    employer = parse_id(m.employer_donor_id, "matching_gift.employer_donor_id", v)
    if m.amount is None:
        v.add("matching_gift.amount", "is required")
    gift_rules.check_amount(m.amount, m.currency, "matching_gift.amount", v)
    check_request_id(request_id, v)
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        if request_id and (first := await sql.id_by_request_id(uow.conn, "crm.matching_gifts", org, request_id)):
            return await store.get(uow.conn, org, first)  # AIP-155: the first result
        gift = await gift_store.get(uow.conn, org, gid)
        if gift is None:
            raise InvalidArgument.field("matching_gift.donation_id", "no such donation")
        if m.currency != gift.currency:
            v.add("matching_gift.amount.currency_code", f"must be the gift's currency, {gift.currency}")
        if employer == gift.donor_id:
            v.add("matching_gift.employer_donor_id", "is the gift's own donor")
        elif employer not in await credit_store.share_live_donors(uow.conn, org, [employer]):
            v.add("matching_gift.employer_donor_id", "no such donor")
        v.raise_if_any()
        mid = uuid.uuid4()
        values = {"donation_id": gid, "employer_donor_id": employer, "amount": m.amount, "currency": m.currency,
                  "expected_date": m.expected_date}
        if not await store.insert(uow.conn, org, mid, values, request_id or None):
            raise AlreadyExists(f"donation {gid} has a match from donor {employer} already",
                                reason="MATCH_EXISTS")
        row = await store.get(uow.conn, org, mid)
        _publish(uow, "pledged", row)
        uow.audit("crm.matching_gift.create", "matching_gift", str(mid), after=values)
        return row


async def get_match(db: Database, org: uuid.UUID, match_id: str) -> MatchingGift:
    mid = parse_id(match_id, "id")
    async with db.unit_of_work(org) as uow:
        row = await store.get(uow.conn, org, mid)
    if row is None:
        raise NotFound(f"matching gift {match_id} not found")
    return row


async def list_matches(db: Database, org: uuid.UUID, donation_id: str, employer_donor_id: str, status: str | None,
                       page_size: int, page_token: str) -> tuple[list[MatchingGift], str]:
    v = Violations()
    gid = parse_optional_id(donation_id, "donation_id", v)
    emp = parse_optional_id(employer_donor_id, "employer_donor_id", v)
    v.raise_if_any()
    page = Keyset.of(page_size, page_token, ("matches", donation_id, employer_donor_id, status or ""),
                     (datetime.fromisoformat, uuid.UUID))
    async with db.unit_of_work(org) as uow:
        rows = await store.page(uow.conn, org, donation_id=gid, employer_id=emp, status=status, after=page.after,
                                limit=page.limit)
    return page.cut(rows, lambda r: (r.created_at, r.id))


async def receive_match(db: Database, org: uuid.UUID, match_id: str, etag: str, gift_date: date | None,
                        payment_method: str | None, reference_number: str) -> tuple[MatchingGift, Donation]:
    v = Violations()
    mid = parse_id(match_id, "id", v)
    if gift_date is None:
        v.add("date", "is required")
    v.check_text("reference_number", reference_number or "", 200)
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        m = await store.get(uow.conn, org, mid, lock=True)
        if m is None:
            raise NotFound(f"matching gift {match_id} not found")
        check_etag(etag, m.version, "matching gift", "etag")
        if m.status != "pledged":
            raise FailedPrecondition(f"matching gift {match_id} was received already", reason="MATCH_RECEIVED")
        # An employer merged into another donor since the pledge: the survivor pays.
        employer = await merges.merged_into(uow.conn, org, m.employer_donor_id) or m.employer_donor_id
        fields = DonationFields(
            donor_id=str(employer), project_id=None, amount=m.amount, currency=m.currency, date=gift_date,
            payment_method=payment_method, reference_number=reference_number or None,
            notes=f"Matching gift for donation {m.donation_id}", is_recurring=False, recurring_frequency=None,
            tax_deductible=True, soft_credits=[SoftCreditInput(donor_id=str(m.employee_donor_id),
                                                               role="matched_employee", amount=m.amount,
                                                               currency=m.currency)])
        checked = check_record(fields, v)
        v.raise_if_any()
        gift = await record_in(uow, org, fields, checked, "")
        await store.mark_received(uow.conn, org, mid, gift.id)
        row = await store.get(uow.conn, org, mid)
        _publish(uow, "received", row)
        uow.audit("crm.matching_gift.receive", "matching_gift", str(mid), before={"status": "pledged"},
                  after={"status": "received", "match_donation_id": str(gift.id)})
        return row, gift
