"""The platform's own Stripe account collects organizations' invoices (Givance's revenue; an
organization's gifts go through its own account, providers.stripe_gateway). Through the official
`stripe` library, asynchronously (its HTTPX client); `api_base` points it elsewhere (tests run a
local HTTP server that speaks Stripe's wire format).

An organization is a Stripe Customer (metadata organization_id); its card is the customer's
default payment method (collected by Stripe, e.g. a Checkout session in setup mode). An invoice
is collected by an off-session PaymentIntent, confirmed at once, with an idempotency key per
invoice and attempt (a retried request never charges twice), and the metadata the platform's
webhook reads back: kind=platform_invoice, organization_id, invoice_id."""

from __future__ import annotations

import logging
import uuid
from decimal import Decimal

import stripe

from services.billing.providers.platform_payments import ChargeResult

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

    async def charge(self, org: uuid.UUID, invoice_id: uuid.UUID, amount: Decimal, currency: str,
                     attempt: int = 1) -> ChargeResult:
        try:
            customer = await self._customer(org)
            settings = customer["invoice_settings"] if "invoice_settings" in customer else None
            method = settings["default_payment_method"] if settings and "default_payment_method" in settings else None
            if not method:
                return ChargeResult(ok=False, failure="the organization has no default payment method in Stripe")
            intent = await self.client.v1.payment_intents.create_async({
                "amount": minor(amount, currency), "currency": currency.lower(), "customer": customer.id,
                "payment_method": method if isinstance(method, str) else method.id, "confirm": True,
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
