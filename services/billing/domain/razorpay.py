"""Razorpay's webhook events as gifts and refunds (the organization's own account):
payment.captured is a gift, refund.processed a refund of one. Its notes carry what Stripe's
metadata does (kind, project_id, donor_name); amounts are in the currency's subunit."""

from __future__ import annotations

import hashlib

from services.billing.domain.gateways import Gift, GiftRefund, from_minor, split_name

RAZORPAY = "razorpay"


def event_id(header: str, payload: bytes) -> str:
    """Razorpay names each event in X-Razorpay-Event-Id (the same on its retries); without it, the body's digest."""
    header = header.strip()
    return header[:255] if header else "sha256:" + hashlib.sha256(payload).hexdigest()


def _entity(event: dict, name: str) -> dict:
    return event["payload"][name]["entity"]


def gift_of(event: dict) -> Gift | None:
    if event.get("event") != "payment.captured":
        return None
    p = _entity(event, "payment")
    notes = p.get("notes") or {}
    if not isinstance(notes, dict) or notes.get("kind", "donation") != "donation":
        return None
    first, last = split_name(str(notes.get("donor_name") or ""))
    currency = str(p["currency"])
    return Gift(payment_id=str(p["id"]), amount=from_minor(int(p["amount"]), currency), currency=currency.upper(),
                email=str(p.get("email") or notes.get("donor_email") or "").strip().lower(), first_name=first,
                last_name=last, project_id=str(notes.get("project_id") or ""),
                paid_at=int(p.get("created_at") or event.get("created_at") or 0))


def refund_of(event: dict) -> GiftRefund | None:
    if event.get("event") != "refund.processed":
        return None
    r = _entity(event, "refund")
    currency = str(r["currency"])
    amount = from_minor(int(r["amount"]), currency)
    return GiftRefund(payment_id=str(r["payment_id"]), refund_id=str(r["id"]), amount=amount, total_refunded=amount,
                      currency=currency.upper(), created=int(r.get("created_at") or event.get("created_at") or 0))
