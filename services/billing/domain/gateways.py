"""Payment gateway configs of an organization (its own account, for donors' gifts) and the
gateway events billing acts on. Stripe's keys are checked offline by their documented shapes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from chassis.errors import Violations

STRIPE, RAZORPAY = "stripe", "razorpay"
GATEWAYS = (STRIPE, RAZORPAY)
SECRET_KEY = re.compile(r"^(sk|rk)_(test|live)_[A-Za-z0-9]{10,247}$")
WEBHOOK_SECRET = re.compile(r"^whsec_[A-Za-z0-9+/=]{10,250}$")
RAZORPAY_KEY_ID = re.compile(r"^rzp_(test|live)_[A-Za-z0-9]{10,40}$")
RAZORPAY_SECRET = re.compile(r"^[A-Za-z0-9]{16,64}$")
RAZORPAY_WEBHOOK_SECRET_MAX = 256  # the webhook's secret is whatever the organization typed in Razorpay's dashboard
NICKNAME_MAX = 100
KEY_PREFIX = re.compile(r"^[a-z]+_(test|live)_")

# Stripe's zero-decimal currencies: amounts are whole units, not cents.
ZERO_DECIMAL = {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF",
                "XOF", "XPF"}


@dataclass
class ConfigFields:
    gateway: str
    nickname: str
    secret_key: str
    webhook_secret: str
    active: bool = True
    key_id: str = ""  # Razorpay's key id


def check_config(c: ConfigFields, v: Violations) -> bool:
    """Checks a new config; returns its mode (True: test mode, from the key's own prefix)."""
    if c.gateway not in GATEWAYS:
        v.add("gateway_config.gateway", "must be STRIPE or RAZORPAY")
    v.check_text("gateway_config.nickname", c.nickname, NICKNAME_MAX)
    if c.gateway == RAZORPAY:
        if not RAZORPAY_KEY_ID.match(c.key_id or ""):
            v.add("gateway_config.key_id", "must be a Razorpay key id (rzp_test_… or rzp_live_…)")
        if not RAZORPAY_SECRET.match(c.secret_key or ""):
            v.add("gateway_config.secret_key", "must be the Razorpay key secret (16 to 64 letters and digits)")
        if not c.webhook_secret or len(c.webhook_secret) > RAZORPAY_WEBHOOK_SECRET_MAX:
            v.add("gateway_config.webhook_secret", f"is required, at most {RAZORPAY_WEBHOOK_SECRET_MAX} characters")
        return (c.key_id or "").startswith("rzp_test_")
    if c.key_id:
        v.add("gateway_config.key_id", "is Razorpay's; a Stripe config has none")
    if not SECRET_KEY.match(c.secret_key or ""):
        v.add("gateway_config.secret_key", "must be a Stripe secret or restricted key (sk_test_…, sk_live_…, rk_…)")
    if not WEBHOOK_SECRET.match(c.webhook_secret or ""):
        v.add("gateway_config.webhook_secret", "must be a Stripe webhook signing secret (whsec_…)")
    return "_test_" in (c.secret_key or "")


def hint(secret_key: str) -> str:
    """What may be shown of a key: its kind and mode, and its last four characters."""
    m = KEY_PREFIX.match(secret_key)
    return f"{m.group(0) if m else ''}…{secret_key[-4:]}"


def from_minor(amount: int, currency: str) -> Decimal:
    """A gateway amount in minor units (cents) -> a decimal amount."""
    cur = currency.upper()
    return Decimal(amount) if cur in ZERO_DECIMAL else (Decimal(amount) / 100).quantize(Decimal("0.01"))


@dataclass
class Gift:
    """A donor's payment, from a gateway event."""

    payment_id: str
    amount: Decimal
    currency: str
    email: str
    first_name: str
    last_name: str
    project_id: str
    paid_at: int


@dataclass
class GiftRefund:
    payment_id: str
    refund_id: str
    amount: Decimal  # what this event refunds more than earlier ones
    total_refunded: Decimal
    currency: str
    created: int


def split_name(name: str) -> tuple[str, str]:
    parts = (name or "").strip().split()
    if not parts:
        return "", ""
    return " ".join(parts[:-1]) or parts[0], parts[-1] if len(parts) > 1 else ""


def gift_of(event: dict) -> Gift | None:
    """payment_intent.succeeded or checkout.session.completed (paid) -> a gift; None when the
    event is not a donor's gift (metadata kind other than "donation")."""
    obj = event["data"]["object"]
    meta = obj.get("metadata") or {}
    if meta.get("kind", "donation") != "donation":
        return None
    if event["type"] == "payment_intent.succeeded":
        amount, currency = obj.get("amount_received") or obj.get("amount"), obj.get("currency", "")
        email = obj.get("receipt_email") or meta.get("donor_email") or ""
        name = meta.get("donor_name") or ""
        payment_id = obj["id"]
    elif event["type"] == "checkout.session.completed":
        if obj.get("payment_status") != "paid" or not obj.get("payment_intent"):
            return None
        details = obj.get("customer_details") or {}
        amount, currency = obj.get("amount_total"), obj.get("currency", "")
        email = details.get("email") or obj.get("customer_email") or meta.get("donor_email") or ""
        name = details.get("name") or meta.get("donor_name") or ""
        payment_id = obj["payment_intent"]
    else:
        return None
    first, last = split_name(name)
    return Gift(payment_id=payment_id, amount=from_minor(int(amount), currency), currency=currency.upper(),
                email=email.strip().lower(), first_name=first, last_name=last,
                project_id=meta.get("project_id", ""), paid_at=int(event.get("created") or 0))


def refund_of(event: dict) -> GiftRefund | None:
    """charge.refunded -> the refund it reports (the newest refund of the charge)."""
    if event["type"] != "charge.refunded":
        return None
    charge = event["data"]["object"]
    payment_id = charge.get("payment_intent")
    if not payment_id:
        return None
    currency = charge.get("currency", "")
    refunds = (charge.get("refunds") or {}).get("data") or []
    refund_id = refunds[0]["id"] if refunds else f"{charge['id']}:{charge.get('amount_refunded')}"
    total = from_minor(int(charge.get("amount_refunded") or 0), currency)
    this = from_minor(int(refunds[0]["amount"]), currency) if refunds else total
    return GiftRefund(payment_id=payment_id, refund_id=refund_id, amount=this, total_refunded=total,
                      currency=currency.upper(), created=int(event.get("created") or 0))
