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
