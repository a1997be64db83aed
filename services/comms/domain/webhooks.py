"""Provider webhooks' signatures and payloads: Mailgun's HMAC (SHA-256 over timestamp + token with
the webhook signing key; stale timestamps refused), SendGrid's signed event webhook (ECDSA P-256
over timestamp + body with the webhook's verification key; stale timestamps refused) and Meta's
X-Hub-Signature-256 (SHA-256 HMAC of the raw body with the app secret)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

MAILGUN_MAX_AGE_SECONDS = 300
MAX_BODY_BYTES = 256 * 1024


def mailgun_signature_ok(signing_key: str, signature: dict[str, Any], now: float | None = None) -> bool:
    if not signing_key or not isinstance(signature, dict):
        return False
    timestamp, token, given = (str(signature.get(k, "")) for k in ("timestamp", "token", "signature"))
    if not timestamp.isdigit() or not token or not given:
        return False
    if abs((now if now is not None else time.time()) - int(timestamp)) > MAILGUN_MAX_AGE_SECONDS:
        return False
    expected = hmac.new(signing_key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given)


def meta_signature_ok(app_secret: str, body: bytes, header: str) -> bool:
    if not app_secret or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256="))


@dataclass(frozen=True)
class ProviderEvent:
    """An email provider's notification, in comms' words."""

    provider: str  # mailgun, sendgrid
    event_id: str
    kind: str  # delivered, failed, complained, unsubscribed (others are stored, not applied)
    permanent: bool
    message_id: str  # the Message-ID header, without brackets
    reason: str


def mailgun_event(payload: dict[str, Any]) -> ProviderEvent | None:
    data = payload.get("event-data")
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not isinstance(data.get("event"), str):
        return None
    headers = (data.get("message") or {}).get("headers") or {}
    status = data.get("delivery-status") or {}
    reason = " ".join(str(x) for x in (status.get("code", ""), status.get("message") or status.get("description")
                                        or data.get("reason") or "") if x)
    return ProviderEvent("mailgun", data["id"][:200], data["event"][:50], data.get("severity") == "permanent",
                         str(headers.get("message-id", ""))[:500], reason[:1000])


@dataclass(frozen=True)
class WhatsAppInbound:
    event_id: str  # the message's wamid
    from_phone: str  # E.164
    text: str
    timestamp: int


def whatsapp_messages(payload: dict[str, Any]) -> list[WhatsAppInbound]:
    """The inbound messages of a WhatsApp Cloud API webhook (object whatsapp_business_account,
    entry[].changes[].value.messages[]); statuses and other changes carry none."""
    out: list[WhatsAppInbound] = []
    if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
        return out
    for entry in payload.get("entry") or []:
        for change in (entry or {}).get("changes") or []:
            value = (change or {}).get("value") or {}
            for m in value.get("messages") or []:
                if not isinstance(m, dict) or not isinstance(m.get("id"), str) or not str(m.get("from", "")).isdigit():
                    continue
                text = ((m.get("text") or {}).get("body") or "") if m.get("type") == "text" else ""
                ts = str(m.get("timestamp", "0"))
                out.append(WhatsAppInbound(m["id"][:200], "+" + str(m["from"])[:15], str(text)[:4096],
                                           int(ts) if ts.isdigit() else 0))
    return out


# -- SendGrid's signed event webhook ---------------------------------------------------------
# The body is a JSON array of events; X-Twilio-Email-Event-Webhook-Signature is the base64 DER
# ECDSA (P-256, SHA-256) signature of the timestamp header followed by the raw body, verified
# with the verification key SendGrid shows for the webhook (base64 DER, or PEM).
SENDGRID_SIGNATURE = "x-twilio-email-event-webhook-signature"
SENDGRID_TIMESTAMP = "x-twilio-email-event-webhook-timestamp"
SENDGRID_MAX_AGE_SECONDS = 600
SENDGRID_MAX_EVENTS = 1000
# SendGrid's event -> comms' kind (permanent for failures); others are stored, not applied.
_SENDGRID_KINDS = {"delivered": ("delivered", False), "bounce": ("failed", True), "deferred": ("failed", False),
                   "spamreport": ("complained", False), "unsubscribe": ("unsubscribed", False),
                   "group_unsubscribe": ("unsubscribed", False)}


def sendgrid_key(value: str) -> ec.EllipticCurvePublicKey | None:
    """The verification key from its base64 DER (as SendGrid shows it) or PEM form; None if unset or unusable."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        key = (load_pem_public_key(value.encode()) if value.startswith("-----")
               else load_der_public_key(base64.b64decode(value)))
    except (ValueError, TypeError):
        return None
    return key if isinstance(key, ec.EllipticCurvePublicKey) else None


def sendgrid_signature_ok(key: ec.EllipticCurvePublicKey | None, body: bytes, signature: str, timestamp: str,
                          now: float | None = None) -> bool:
    if key is None or not signature or not timestamp.isdigit():
        return False
    if abs((now if now is not None else time.time()) - int(timestamp)) > SENDGRID_MAX_AGE_SECONDS:
        return False
    try:
        key.verify(base64.b64decode(signature), timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def sendgrid_event(item: Any) -> ProviderEvent | None:
    """One event of SendGrid's array (None: not an event)."""
    if not isinstance(item, dict) or not isinstance(item.get("sg_event_id"), str) or not isinstance(
            item.get("event"), str):
        return None
    kind, permanent = _SENDGRID_KINDS.get(item["event"], (item["event"][:50], False))
    if item["event"] == "bounce" and item.get("type") == "blocked":
        permanent = False  # a block is the receiving server's "not now"
    reason = " ".join(str(x) for x in (item.get("status", ""), item.get("reason") or item.get("response") or "")
                      if x)
    return ProviderEvent("sendgrid", item["sg_event_id"][:200], kind, permanent,
                         str(item.get("smtp-id", "")).strip()[:500], reason[:1000])
