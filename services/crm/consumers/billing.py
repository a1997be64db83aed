"""What billing tells crm: the plan's entitlements (a replica crm enforces from), and online
gifts paid through the organization's own gateway (donations, refunds)."""

from __future__ import annotations

import uuid
from datetime import UTC

from givance.events.v1 import billing_events_pb2, event_pb2

from chassis import events
from chassis.convert import from_money
from chassis.db import UnitOfWork
from services.crm.handlers import entitlements, online_gifts
from services.crm.handlers.online_gifts import OnlineGift, OnlineRefund

ENTITLEMENTS_QUEUE = "crm.entitlements"
ENTITLEMENTS_BINDINGS = ["billing.entitlements.changed"]
GIFTS_QUEUE = "crm.online-gifts"
SUCCEEDED, REFUNDED = "billing.payment.succeeded", "billing.payment.refunded"
GIFTS_BINDINGS = [SUCCEEDED, REFUNDED]


async def on_entitlements_changed(uow: UnitOfWork, event: event_pb2.Event) -> None:
    e = events.unpack(event, billing_events_pb2.EntitlementsChangedEvent)
    await entitlements.record(uow, uuid.UUID(e.organization_id), e.plan_code, e.donors, e.seats,
                              e.decide_time.ToDatetime(tzinfo=UTC))


async def on_payment_event(uow: UnitOfWork, event: event_pb2.Event) -> None:
    org = uow.tenant_id
    if event.type == SUCCEEDED:
        p = events.unpack(event, billing_events_pb2.PaymentSucceededEvent)
        await online_gifts.record_online_gift(uow, org, OnlineGift(
            gateway=p.gateway, payment_id=p.payment_id, amount=from_money(p.amount), currency=p.amount.currency_code,
            email=p.donor_email, first_name=p.donor_first_name, last_name=p.donor_last_name,
            project_id=p.project_id, paid_on=p.paid_time.ToDatetime(tzinfo=UTC).date()))
    elif event.type == REFUNDED:
        r = events.unpack(event, billing_events_pb2.PaymentRefundedEvent)
        await online_gifts.refund_online_gift(uow, org, OnlineRefund(
            gateway=r.gateway, payment_id=r.payment_id, refund_id=r.refund_id, amount=from_money(r.amount),
            currency=r.amount.currency_code, refunded_on=r.refund_time.ToDatetime(tzinfo=UTC).date()))
