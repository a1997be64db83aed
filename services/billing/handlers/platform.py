"""The platform's own Stripe account's webhook (Givance's revenue; never an organization's gifts,
handlers.webhooks): verified with the platform's endpoint secret, each event stored once by id
and applied once to the invoice it paid or failed:

- payment_intent.succeeded: the invoice paid (billing.invoice.paid); a past-due or unpaid
  subscription whose invoices are all paid is active again (billing.subscription.recovered);
- payment_intent.payment_failed: the invoice's payment failed (billing.invoice.payment_failed)
  and the subscription goes into dunning (past_due, the next retry a due action; the last one
  cancelled or unpaid), unless the charge's own answer already counted that failure;
- setup_intent.succeeded (a SetupIntent of SetupPaymentMethod): the card becomes the
  organization's default (handlers.payment_methods.save); its masked details are read from
  Stripe before the transaction when the event does not carry them (Stripe unreachable: 503, and
  Stripe retries), and the card it replaced is detached once the new one is committed.

The event's transaction first locks the subscription, which the charging transaction holds: an
event that overtakes its charge's commit waits for it, then finds the charge's outcome recorded."""

from __future__ import annotations

import logging

from chassis.db import Database, UnitOfWork
from services.billing.domain import invoices as invoice_rules
from services.billing.domain import subscriptions as rules
from services.billing.domain.clock import Clock
from services.billing.domain.platform import (
    Card,
    PlatformPayment,
    PlatformSetup,
    platform_payment_of,
    platform_setup_of,
)
from services.billing.handlers import invoicing, payment_methods, scheduler
from services.billing.handlers.webhooks import REPLAYED, Outcome
from services.billing.providers import stripe_gateway
from services.billing.providers.platform_payments import CardsUnavailable, PlatformCards
from services.billing.store import invoices as invoice_store
from services.billing.store import plans as plan_store
from services.billing.store import platform as store
from services.billing.store import subscriptions as sub_store

log = logging.getLogger(__name__)


class PlatformEvents:
    def __init__(self, db: Database, secret: str, tolerance: int, policy: scheduler.Policy, clock: Clock,
                 cards: PlatformCards | None = None):
        self.db, self.secret, self.tolerance, self.policy, self.clock = db, secret, tolerance, policy, clock
        self.cards = cards

    async def receive(self, payload: bytes, signature: str) -> Outcome:
        if not self.secret:
            return Outcome(404, "the platform's payment webhook is not configured")
        try:
            event = stripe_gateway.verify(payload, signature, self.secret, self.tolerance)
        except stripe_gateway.InvalidSignature as exc:
            return Outcome(400, f"signature: {exc}")
        except ValueError:
            return Outcome(400, "the body is not a Stripe event")
        if not isinstance(event, dict) or not isinstance(event.get("id"), str):
            return Outcome(400, "the body is not a Stripe event")
        setup = platform_setup_of(event)
        if setup is not None:
            return await self._saved_card(event, setup, payload)
        payment = platform_payment_of(event)
        if payment is None:  # a donor's gift belongs on its organization's endpoint, never here
            return Outcome(200, f"{event.get('type')}: not a payment of the platform's invoices; ignored")
        async with self.db.unit_of_work(payment.org) as uow:
            sub = await sub_store.get(uow.conn, payment.org, for_update=True)
            if not await store.store_event(uow.conn, payment.org, event["id"][:255], str(event["type"]),
                                           payment.payment_id, payload.decode("utf-8")):
                return Outcome(200, REPLAYED)
            outcome = await apply(uow, payment, sub, self.policy, self.clock)
            await store.set_outcome(uow.conn, payment.org, event["id"][:255], outcome)
        return Outcome(200, outcome)

    async def _saved_card(self, event: dict, setup: PlatformSetup, payload: bytes) -> Outcome:
        card = setup.card
        if card is None and self.cards is not None:
            try:
                card = await self.cards.card(setup.payment_method_id)
            except CardsUnavailable as exc:  # not stored: Stripe retries the event
                return Outcome(503, f"the card's details could not be read ({exc})")
        card = card or Card(payment_method_id=setup.payment_method_id)
        async with self.db.unit_of_work(setup.org) as uow:
            if not await store.store_event(uow.conn, setup.org, event["id"][:255], str(event["type"]),
                                           setup.setup_intent_id, payload.decode("utf-8")):
                return Outcome(200, REPLAYED)
            outcome, replaced = await payment_methods.save(uow, setup, card)
            await store.set_outcome(uow.conn, setup.org, event["id"][:255], outcome)
        if replaced and self.cards is not None:  # best effort: the saved card is what gets charged
            try:
                await self.cards.detach(replaced)
            except CardsUnavailable as exc:
                log.warning("the replaced card %s of %s is still attached at Stripe: %s", replaced, setup.org, exc)
        return Outcome(200, outcome)


async def apply(uow: UnitOfWork, p: PlatformPayment, sub: dict | None, policy: scheduler.Policy,
                clock: Clock) -> str:
    now = clock.now()
    inv = await invoice_store.get(uow.conn, p.org, p.invoice_id, for_update=True)
    if inv is None:
        return "unknown invoice: stored"
    charge = await store.charge(uow.conn, p.org, p.payment_id)
    attempt = charge["attempt"] if charge else await store.attempts(uow.conn, p.org, inv["id"]) + 1
    ours = sub is not None and sub["id"] == inv["subscription_id"]
    if p.succeeded:
        await store.record_charge(uow.conn, p.org, p.payment_id, inv["id"], attempt, inv["total"], inv["currency"],
                                  "succeeded")
        if inv["status"] not in (invoice_rules.OPEN, invoice_rules.UNCOLLECTIBLE):
            return f"invoice {inv['status']} already"
        await invoicing.mark_paid(uow, p.org, inv, now)
        if ours and sub["status"] in (rules.PAST_DUE, rules.UNPAID) and not await invoice_store.open_for_subscription(
                uow.conn, p.org, sub["id"]):
            await scheduler.recover(uow, p.org, sub, await plan_store.get(uow.conn, sub["plan_id"]), now)
            return "invoice paid; subscription recovered"
        return "invoice paid"
    if charge is not None and charge["status"] != "processing":
        return f"charge {charge['status']} already"
    await store.record_charge(uow.conn, p.org, p.payment_id, inv["id"], attempt, inv["total"], inv["currency"],
                              "failed", p.failure)
    if inv["status"] != invoice_rules.OPEN:
        return f"invoice {inv['status']}: nothing to do"
    uow.publish("billing.invoice.payment_failed", invoicing.invoice_event(inv), aggregate_type="invoice",
                aggregate_id=str(inv["id"]))
    if not ours or sub["status"] not in (rules.TRIAL, rules.ACTIVE, rules.PAST_DUE):
        return "payment failed"
    plan = await plan_store.get(uow.conn, sub["plan_id"])
    return await scheduler.failed(uow, p.org, sub, plan, now, policy, attempts=sub["payment_attempts"] + 1)
