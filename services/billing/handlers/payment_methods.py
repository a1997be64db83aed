"""The card the platform charges for the organization's subscription (Stripe Billing's flow):
a SetupIntent on the platform's Stripe account for the organization's customer (created once),
confirmed in the browser by Stripe.js; the platform's `setup_intent.succeeded` event saves the
card as the organization's default (handlers.platform: `save`), which renewals and dunning charge;
removing it detaches it at Stripe. Only the card's brand, last four digits and expiry are kept.

The provider is called outside any transaction: a slow Stripe never holds a row lock."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

from chassis.db import Database, UnitOfWork
from chassis.errors import Aborted, FailedPrecondition, NotFound, Unavailable, Violations
from chassis.resource import check_etag, check_request_id
from services.billing.domain.platform import Card, PlatformSetup
from services.billing.providers.platform_payments import CardsUnavailable, PlatformCards, SavedCard, Setup
from services.billing.store import platform as store

log = logging.getLogger(__name__)

NOT_CONFIGURED = FailedPrecondition("the platform has no payment provider configured: no card can be saved "
                                    "(BILLING_PLATFORM_STRIPE_SECRET_KEY)", reason="PLATFORM_PAYMENTS_NOT_CONFIGURED")


def _unavailable(exc: CardsUnavailable) -> Unavailable:
    return Unavailable(f"the platform's payment provider did not answer ({exc}); try again",
                       reason="PAYMENT_PROVIDER_UNAVAILABLE")


async def setup(db: Database, cards: PlatformCards | None, org: uuid.UUID, request_id: str) -> Setup:
    v = Violations()
    check_request_id(request_id, v)
    v.raise_if_any()
    if cards is None:
        raise NOT_CONFIGURED
    async with db.unit_of_work(org) as uow:
        row = await store.customer(uow.conn, org)
    try:
        if row is None:  # found by its metadata at Stripe, or created with an idempotency key: never twice
            customer_id = await cards.customer(org)
            async with db.unit_of_work(org) as uow:
                row = await store.add_customer(uow.conn, org, customer_id)
        return await cards.setup(org, row["customer_id"], request_id)
    except CardsUnavailable as exc:
        raise _unavailable(exc) from None


async def get(db: Database, org: uuid.UUID) -> dict | None:
    """The saved card's row, or None when the organization has none."""
    async with db.unit_of_work(org) as uow:
        row = await store.customer(uow.conn, org)
    return row if row and row["payment_method_id"] else None


async def delete(db: Database, cards: PlatformCards | None, org: uuid.UUID, etag: str) -> dict:
    row = await get(db, org)
    if row is None:
        raise NotFound("the organization has no saved payment method")
    check_etag(etag, row["version"], "payment method", "etag")
    if cards is not None:
        try:
            await cards.detach(row["payment_method_id"])
        except CardsUnavailable as exc:
            raise _unavailable(exc) from None
    async with db.unit_of_work(org) as uow:
        if not await store.forget_card(uow.conn, org, row["payment_method_id"]):
            raise Aborted("another card replaced it meanwhile; read it again", reason="ETAG_MISMATCH")
        uow.audit("billing.payment_method.delete", "payment_method", row["payment_method_id"],
                  before={"brand": row["brand"], "last4": row["last4"]})
    return row


async def saved(uow: UnitOfWork, org: uuid.UUID) -> SavedCard | None:
    """The card a charge uses, when one was saved here."""
    row = await store.customer(uow.conn, org)
    if row is None or not row["payment_method_id"]:
        return None
    return SavedCard(customer_id=row["customer_id"], payment_method_id=row["payment_method_id"])


async def save(uow: UnitOfWork, s: PlatformSetup, card: Card) -> tuple[str, str | None]:
    """The event's card becomes the default unless a newer SetupIntent's card is saved already, or
    the SetupIntent was not for the organization's customer: (outcome, the card it replaced, to
    detach)."""
    row = await store.customer(uow.conn, s.org, for_update=True)
    at = datetime.fromtimestamp(s.created, UTC)
    if row is None or row["customer_id"] != s.customer_id:  # SetupPaymentMethod records the customer first
        return "not the organization's customer: stored", None
    if row["setup_time"] is not None and row["setup_time"] > at:
        return "a newer card is saved already: stored", None
    await store.save_card(uow.conn, s.org, s.customer_id, card, s.setup_intent_id, at)
    uow.audit("billing.payment_method.save", "payment_method", card.payment_method_id,
              after={"brand": card.brand, "last4": card.last4})
    old = row["payment_method_id"]
    return ("card saved; replaced the previous one" if old and old != card.payment_method_id else "card saved",
            old if old != card.payment_method_id else None)
