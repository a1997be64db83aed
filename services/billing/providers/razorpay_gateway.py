"""Razorpay, an organization's own account (a second gift gateway): its keys checked offline with
the official `razorpay` library, its webhooks verified the way Razorpay documents
(X-Razorpay-Signature: the hex HMAC-SHA256 of the raw body with the webhook's secret) by the
library itself."""

from __future__ import annotations

import hashlib
import hmac
import json

import razorpay
from razorpay.errors import SignatureVerificationError

from services.billing.providers.stripe_gateway import InvalidSignature


def check_keys(key_id: str, key_secret: str) -> None:
    """What the SDK checks without a network call: a client can be built on the key pair."""
    razorpay.Client(auth=(key_id, key_secret))


def verify(payload: bytes, signature: str, secret: str) -> dict:
    try:
        razorpay.Utility().verify_webhook_signature(payload.decode("utf-8"), signature, secret)
    except (SignatureVerificationError, UnicodeDecodeError):
        raise InvalidSignature("Razorpay Signature Verification Failed") from None
    return json.loads(payload)


def sign(payload: bytes, secret: str) -> str:
    """An X-Razorpay-Signature header for `payload`, as Razorpay computes it (tests, docs)."""
    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()
