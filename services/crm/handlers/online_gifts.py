"""Online gifts paid through the organization's own gateway (billing.payment.succeeded) become
donations, once: keyed by the gateway's payment id (the donation's request id), the donor
matched by email or created, the project from the payment's metadata, paid by credit card.
Refunds at the gateway (billing.payment.refunded) refund the donation, once (keyed by the
gateway's refund id); one that arrives before its gift waits and is applied when the gift is."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from givance.events.v1 import crm_events_pb2

from chassis.convert import date as date_pb
from chassis.convert import money
from chassis.db import UnitOfWork
from chassis.errors import ResourceExhausted, Violations
from chassis.resource import parse_optional_id
from services.crm.domain import donations as gift_rules
from services.crm.domain import donors as donor_rules
from services.crm.domain.donors import DonorFields
from services.crm.handlers import funds, pledges, soft_credits, tax_receipts
from services.crm.handlers.entitlements import check_room_for_donors
from services.crm.store import donations as store
from services.crm.store import donors as donor_store
from services.crm.store import online_gifts as gift_store
from services.crm.store import projects as project_store

log = logging.getLogger(__name__)


@dataclass
class OnlineGift:
    gateway: str
    payment_id: str
    amount: Decimal
    currency: str
    email: str
    first_name: str
    last_name: str
    project_id: str
    paid_on: date


@dataclass
class OnlineRefund:
    gateway: str
    payment_id: str
    refund_id: str
    amount: Decimal
    currency: str
    refunded_on: date


def payment_key(gateway: str, payment_id: str) -> str:
    return f"{gateway}:{payment_id}"[:100]


async def _donor_for(uow: UnitOfWork, org: uuid.UUID, g: OnlineGift) -> uuid.UUID:
    if g.email:
        found = await gift_store.donor_by_email(uow.conn, org, g.email)
        if found is not None:
            return found
    v = Violations()
    fields = DonorFields(first_name=g.first_name or (g.email.split("@")[0] if g.email else "Online"),
                         last_name=g.last_name or "", email=g.email or None, tags=["online-gift"])
    clean = donor_rules.normalize(fields, "", v, set())
    if v:  # a name or email the gateway accepted and crm does not: keep the gift, with what is valid
        clean = donor_rules.normalize(DonorFields(first_name="Online", last_name="donor", tags=["online-gift"]), "",
                                      Violations(), set())
    # A gift is never refused for the plan's donor limit: it was paid. The limit is logged.
    try:
        await check_room_for_donors(uow, org)
    except ResourceExhausted as exc:
        log.info("online gift %s: a new donor past the plan's limit (%s)", g.payment_id, exc)
    row = await donor_store.insert(uow.conn, org, uuid.uuid4(), clean.as_dict(), None)
    uow.publish("crm.donor.created", crm_events_pb2.DonorCreatedEvent(donor_id=str(row.id)), aggregate_type="donor",
                aggregate_id=str(row.id))
    return row.id


async def record_online_gift(uow: UnitOfWork, org: uuid.UUID, g: OnlineGift) -> None:
    key = payment_key(g.gateway, g.payment_id)
    if await store.by_request_id(uow.conn, org, key) is not None:
        return  # recorded already
    donor_id = await _donor_for(uow, org, g)
    project_id = parse_optional_id(g.project_id, "project_id", Violations())
    if project_id is not None and await project_store.status_for_gift(uow.conn, org, project_id) != "active":
        log.info("online gift %s: project %s is not an active project of the organization; recorded without it",
                 g.payment_id, project_id)
        project_id = None
    values = {"donor_id": donor_id, "project_id": project_id, "amount": g.amount, "currency": g.currency,
              "date": g.paid_on, "payment_method": "credit_card", "reference_number": g.payment_id,
              "notes": f"Online gift through {g.gateway}", "is_recurring": False, "recurring_frequency": None,
              "tax_deductible": True, "next_expected_date": None, "pledge_id": None}
    row = await store.record(uow.conn, org, uuid.uuid4(), values, key)
    if row is None:
        return
    uow.publish("crm.donation.recorded", crm_events_pb2.DonationRecordedEvent(
        donation_id=str(row.id), donor_id=str(row.donor_id), project_id=str(row.project_id or ""),
        amount=money(row.amount, row.currency), date=date_pb(row.date), payment_method="credit_card",
        is_recurring=False), aggregate_type="donor", aggregate_id=str(row.donor_id))
    uow.audit("crm.donation.record", "donation", str(row.id), actor_kind="system",
              after={"donor_id": row.donor_id, "amount": row.amount, "currency": row.currency,
                     "reference_number": g.payment_id, "gateway": g.gateway})
    for held in await gift_store.take_held_refunds(uow.conn, org, key):
        await _refund(uow, org, row.id, held["refund_key"], held["amount"], held["refund_date"])


async def refund_online_gift(uow: UnitOfWork, org: uuid.UUID, r: OnlineRefund) -> None:
    key, refund_key = payment_key(r.gateway, r.payment_id), payment_key(r.gateway, r.refund_id)
    gift = await store.by_request_id(uow.conn, org, key)
    if gift is None:  # the refund came first: it waits for its gift
        await gift_store.hold_refund(uow.conn, org, refund_key, key, r.amount, r.currency, r.refunded_on)
        return
    await _refund(uow, org, gift.id, refund_key, r.amount, r.refunded_on)


async def _refund(uow: UnitOfWork, org: uuid.UUID, donation_id: uuid.UUID, refund_key: str, amount: Decimal,
                  when: date) -> None:
    if await store.refund_by_request_id(uow.conn, org, refund_key) is not None:
        return
    row, _, soft = await soft_credits.lock_gift(uow, org, donation_id)
    remaining = row.amount - row.refunded_amount
    take = min(amount, remaining)
    if take <= 0:
        log.info("gateway refund %s: donation %s is fully refunded already", refund_key, donation_id)
        return
    gift_rules.refund_amount(take, row.amount, row.refunded_amount, str(donation_id))
    refund = await store.insert_refund(uow.conn, org, uuid.uuid4(), donation_id, take, row.currency,
                                       "Refunded at the payment gateway", max(when, row.date), refund_key, None)
    if refund is None:
        return
    updated = await store.add_refunded(uow.conn, org, donation_id, take)
    await store.recompute_giving(uow.conn, org, [(updated.donor_id, updated.currency)])
    await soft_credits.after_refund(uow, org, updated, soft)
    await funds.follow_gift(uow, org, updated)
    await pledges.follow_gift(uow, org, updated)
    await tax_receipts.follow_gift(uow, org, row, updated, "Refunded at the payment gateway")
    left = updated.amount - updated.refunded_amount
    uow.publish("crm.donation.refunded", crm_events_pb2.DonationRefundedEvent(
        refund_id=str(refund.id), donation_id=str(donation_id), donor_id=str(updated.donor_id),
        amount=money(take, updated.currency), refunded_amount=money(updated.refunded_amount, updated.currency),
        remaining_amount=money(left, updated.currency), reason="Refunded at the payment gateway",
        refund_date=date_pb(refund.refund_date), fully_refunded=left <= 0),
        aggregate_type="donor", aggregate_id=str(updated.donor_id))
    uow.audit("crm.donation.refund", "donation", str(donation_id), actor_kind="system",
              after={"refund_id": str(refund.id), "amount": take, "gateway_refund": refund_key})
