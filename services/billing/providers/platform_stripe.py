"""The platform's own Stripe account collects organizations' invoices (Givance's revenue; an
organization's gifts go through its own account, providers.stripe_gateway). Through the official
`stripe` library, asynchronously (its HTTPX client); `api_base` points it elsewhere (tests run a
local HTTP server that speaks Stripe's wire format).

An organization is a Stripe Customer (metadata organization_id); its card is saved by a
SetupIntent (usage off_session, metadata kind=platform_payment_method) that Stripe.js confirms,
and recorded by billing from the platform's setup_intent.succeeded event; without one, the
customer's own default payment method is charged. An invoice
is collected by an off-session PaymentIntent, confirmed at once, with an idempotency key per
invoice and attempt (a retried request never charges twice), and the metadata the platform's
webhook reads back: kind=platform_invoice, organization_id, invoice_id."""

from __future__ import annotations

import logging
import uuid
from decimal import Decimal

import stripe

from services.billing.domain.platform import SETUP_KIND, Card, card_of
from services.billing.providers.platform_payments import CardsUnavailable, ChargeResult, SavedCard, Setup

log = logging.getLogger(__name__)

KIND = "platform_invoice"
ZERO_DECIMAL = {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF",
                "XOF", "XPF"}


def minor(amount: Decimal, currency: str) -> int:
    """A decimal amount in the currency's minor unit, as Stripe takes it."""
    return int(amount if currency.upper() in ZERO_DECIMAL else (amount * 100).to_integral_value())


class StripeCharger:
    def __init__(self, secret_key: str, api_base: str = "", timeout: float = 20.0) -> None:
        options = {"base_addresses": {"api": api_base.rstrip("/")}} if api_base else {}
        self.client = stripe.StripeClient(secret_key, http_client=stripe.HTTPXClient(timeout=timeout),
                                          max_network_retries=2, **options)

    async def _customer(self, org: uuid.UUID) -> stripe.Customer:
        found = await self.client.v1.customers.search_async(
            {"query": f"metadata['organization_id']:'{org}'", "limit": 1})
        if found.data:
            return found.data[0]
        return await self.client.v1.customers.create_async(
            {"description": f"Givance organization {org}", "metadata": {"organization_id": str(org)}},
            {"idempotency_key": f"givance-customer-{org}"})

    async def _default(self, org: uuid.UUID) -> tuple[str, str | None]:
        """(customer id, the customer's own default payment method) when no card was saved here."""
        customer = await self._customer(org)
        settings = customer["invoice_settings"] if "invoice_settings" in customer else None
        method = settings["default_payment_method"] if settings and "default_payment_method" in settings else None
        return customer.id, (method if isinstance(method, str) or method is None else method.id)

    async def charge(self, org: uuid.UUID, invoice_id: uuid.UUID, amount: Decimal, currency: str,
                     attempt: int = 1, saved: SavedCard | None = None) -> ChargeResult:
        try:
            customer, method = ((saved.customer_id, saved.payment_method_id) if saved is not None
                                else await self._default(org))
            if not method:
                return ChargeResult(ok=False, failure="the organization has no default payment method in Stripe")
            intent = await self.client.v1.payment_intents.create_async({
                "amount": minor(amount, currency), "currency": currency.lower(), "customer": customer,
                "payment_method": method, "confirm": True,
                "off_session": True, "description": f"Givance invoice {invoice_id}",
                "metadata": {"kind": KIND, "organization_id": str(org), "invoice_id": str(invoice_id)},
            }, {"idempotency_key": f"givance-invoice-{invoice_id}-{attempt}"})
        except stripe.CardError as exc:  # declined: the PaymentIntent exists, failed
            intent = exc.error.payment_intent if exc.error else None
            return ChargeResult(ok=False, reference=intent.id if intent else "",
                                failure=f"{exc.code or 'card_error'}: {exc.user_message or exc}")
        except stripe.StripeError as exc:  # Stripe unreachable or refusing: a failed attempt, retried by dunning
            log.warning("platform charge of invoice %s failed: %s", invoice_id, exc)
            return ChargeResult(ok=False, failure=f"stripe: {exc.user_message or exc.__class__.__name__}")
        if intent.status == "succeeded":
            return ChargeResult(ok=True, reference=intent.id)
        if intent.status == "processing":
            return ChargeResult(ok=False, pending=True, reference=intent.id)
        return ChargeResult(ok=False, reference=intent.id, failure=f"payment intent {intent.status}")


class StripeCards:
    """The organization's card at the platform's Stripe account: its Customer (found by metadata,
    else created with an idempotency key per organization), a SetupIntent for Stripe.js to
    confirm, the saved PaymentMethod's masked card, and its detachment."""

    def __init__(self, charger: StripeCharger) -> None:
        self.charger, self.client = charger, charger.client

    async def customer(self, org: uuid.UUID) -> str:
        try:
            return (await self.charger._customer(org)).id
        except stripe.StripeError as exc:
            raise CardsUnavailable(_said(exc)) from None

    async def setup(self, org: uuid.UUID, customer_id: str, request_id: str) -> Setup:
        options = {"idempotency_key": f"givance-setup-{org}-{request_id}"} if request_id else {}
        try:
            intent = await self.client.v1.setup_intents.create_async({
                "customer": customer_id, "usage": "off_session", "automatic_payment_methods": {"enabled": True},
                "description": f"Givance subscription of organization {org}",
                "metadata": {"kind": SETUP_KIND, "organization_id": str(org)}}, options)
        except stripe.StripeError as exc:
            raise CardsUnavailable(_said(exc)) from None
        return Setup(setup_intent_id=intent.id, client_secret=intent.client_secret or "", customer_id=customer_id)

    async def card(self, payment_method_id: str) -> Card:
        try:
            pm = await self.client.v1.payment_methods.retrieve_async(payment_method_id)
        except stripe.StripeError as exc:
            raise CardsUnavailable(_said(exc)) from None
        return card_of(pm.to_dict())

    async def detach(self, payment_method_id: str) -> None:
        try:
            await self.client.v1.payment_methods.detach_async(payment_method_id)
        except stripe.InvalidRequestError as exc:  # detached already (or gone): nothing left to undo
            log.info("payment method %s not detached: %s", payment_method_id, _said(exc))
        except stripe.StripeError as exc:
            raise CardsUnavailable(_said(exc)) from None


def _said(exc: stripe.StripeError) -> str:
    return f"stripe: {exc.user_message or exc.__class__.__name__}"
