"""Stripe, an organization's own account: its keys checked offline with the official library,
its webhooks verified the way Stripe documents (Stripe-Signature, HMAC-SHA256 of
"{timestamp}.{payload}" with the endpoint's secret, 300 s tolerance) by the library itself."""

from __future__ import annotations

import json

import stripe
from stripe import SignatureVerificationError, WebhookSignature

# Bound once: `stripe.WebhookSignature` is a lazy attribute of the package, resolved by an
# import_module call on every access (a tenth of a webhook's CPU, measured).


class InvalidSignature(Exception):
    """The Stripe-Signature header does not verify (wrong secret, tampered body, stale timestamp)."""


def check_keys(secret_key: str) -> None:
    """What the SDK checks without a network call: a client can be built on the key."""
    stripe.StripeClient(secret_key)


def verify(payload: bytes, signature: str, secret: str, tolerance: int) -> dict:
    """The verified event as a plain dict. stripe.WebhookSignature.verify_header (what
    stripe.Webhook.construct_event calls before it builds a StripeObject, which billing does not
    need: it stores the raw event) raises on a bad signature or a timestamp outside the tolerance."""
    try:
        WebhookSignature.verify_header(payload, signature, secret, tolerance)
    except SignatureVerificationError as exc:
        raise InvalidSignature(str(exc.user_message or exc)) from None
    return json.loads(payload)


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """A Stripe-Signature header for `payload`, as Stripe computes it (tests, docs, bench)."""
    body = payload.decode("utf-8")
    v1 = WebhookSignature._compute_signature(f"{timestamp}.{body}", secret)
    return f"t={timestamp},v1={v1}"
