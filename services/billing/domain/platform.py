"""The platform's own payment events (its Stripe account collecting organizations' invoices),
told apart from donors' gifts: only a PaymentIntent the platform made for an invoice (metadata
kind=platform_invoice, organization_id, invoice_id) is one."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

KIND = "platform_invoice"
SUCCEEDED, FAILED = "payment_intent.succeeded", "payment_intent.payment_failed"


@dataclass(frozen=True)
class PlatformPayment:
    org: uuid.UUID
    invoice_id: uuid.UUID
    payment_id: str
    succeeded: bool
    failure: str = ""


def platform_payment_of(event: dict) -> PlatformPayment | None:
    """The platform's payment an event reports; None for anything else (a gift, another type)."""
    if event.get("type") not in (SUCCEEDED, FAILED):
        return None
    try:
        obj = event["data"]["object"]
        meta = obj.get("metadata") or {}
        if meta.get("kind") != KIND:
            return None
        org, invoice = uuid.UUID(str(meta["organization_id"])), uuid.UUID(str(meta["invoice_id"]))
        payment_id = str(obj["id"])
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    error = obj.get("last_payment_error") or {}
    failure = "" if event["type"] == SUCCEEDED else str(error.get("message") or error.get("code") or "payment failed")
    return PlatformPayment(org=org, invoice_id=invoice, payment_id=payment_id[:255],
                           succeeded=event["type"] == SUCCEEDED, failure=failure)


# -- the organization's card: a SetupIntent the platform made for its customer --------------------

SETUP_KIND = "platform_payment_method"
SETUP_SUCCEEDED = "setup_intent.succeeded"


@dataclass(frozen=True)
class Card:
    """A saved card as it may be kept and shown: never its number."""

    payment_method_id: str
    brand: str = ""
    last4: str = ""
    exp_month: int = 0
    exp_year: int = 0


@dataclass(frozen=True)
class PlatformSetup:
    org: uuid.UUID
    setup_intent_id: str
    customer_id: str
    payment_method_id: str
    created: int  # the SetupIntent's creation (seconds): the newest saved card wins
    card: Card | None = None  # when the event carries the payment method expanded


def card_of(pm: dict) -> Card:
    """The masked card of a Stripe PaymentMethod object (brand, last4, expiry only)."""
    card = pm.get("card") or {}
    last4 = str(card.get("last4") or "")
    return Card(payment_method_id=str(pm["id"])[:255], brand=str(card.get("brand") or pm.get("type") or "")[:32],
                last4=last4 if len(last4) == 4 and last4.isdigit() else "",
                exp_month=_bounded(card.get("exp_month"), 12), exp_year=_bounded(card.get("exp_year"), 9999))


def _bounded(value: object, top: int) -> int:
    try:
        n = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0
    return n if 0 <= n <= top else 0


def platform_setup_of(event: dict) -> PlatformSetup | None:
    """The saved card a setup_intent.succeeded event of the platform's own SetupIntent reports
    (metadata kind=platform_payment_method, organization_id); None for anything else."""
    if event.get("type") != SETUP_SUCCEEDED:
        return None
    try:
        obj = event["data"]["object"]
        meta = obj.get("metadata") or {}
        if meta.get("kind") != SETUP_KIND:
            return None
        org = uuid.UUID(str(meta["organization_id"]))
        pm, customer = obj["payment_method"], obj["customer"]
        if not pm or not customer:
            return None
        pm_id = str(pm["id"] if isinstance(pm, dict) else pm)
        customer_id = str(customer["id"] if isinstance(customer, dict) else customer)
        card = card_of(pm) if isinstance(pm, dict) and pm.get("card") else None
        return PlatformSetup(org=org, setup_intent_id=str(obj["id"])[:255], customer_id=customer_id[:255],
                             payment_method_id=pm_id[:255], created=int(obj.get("created") or 0), card=card)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
