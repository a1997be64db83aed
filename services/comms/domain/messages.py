"""Rules of outgoing messages: channels, statuses, retries, consent categories, Message-IDs."""

from __future__ import annotations

import re
import uuid

CHANNELS_SENT = ("email", "sms", "whatsapp")
STATUSES = ("queued", "sent", "delivered", "bounced", "suppressed", "failed")
LOG_CHANNELS = ("email", "phone", "meeting", "letter", "sms", "whatsapp", "other")
DIRECTIONS = ("inbound", "outbound")
SUBJECT_MAX = 1000
CONTENT_MAX = 64 * 1024


def backoff(attempt: int, base: float, longest: float = 600.0) -> float:
    """Seconds before retry `attempt` (1-based) of a transient failure: exponential, capped."""
    return min(base * (2 ** (attempt - 1)), longest)


def needs_consent(category: str) -> bool:
    """Transactional messages (verification, reset, invitations, receipts) go regardless of
    marketing consent; every other category needs the address not to have withdrawn it."""
    return category not in ("transactional", "receipts")


def suppression_applies(category: str, source_transactional: bool) -> bool:
    """A suppressed address gets nothing but the account messages identity sends."""
    return not source_transactional

# The events comms publishes (routing keys).
COMMUNICATION_LOGGED = "comms.communication.logged"
EMAIL_SENT = "comms.email.sent"
EMAIL_DELIVERED = "comms.email.delivered"
EMAIL_OPENED = "comms.email.opened"
EMAIL_CLICKED = "comms.email.clicked"
EMAIL_BOUNCED = "comms.email.bounced"
EMAIL_COMPLAINED = "comms.email.complained"
EMAIL_UNSUBSCRIBED = "comms.email.unsubscribed"
WHATSAPP_MESSAGE_RECEIVED = "comms.whatsapp.message_received"
# ai's answer to a staff member's WhatsApp message, for comms to send
WHATSAPP_REPLY_REQUESTED = "ai.whatsapp.reply_requested"
WHATSAPP_TEXT_MAX = 4096  # the Cloud API's limit on a text message's body


def whatsapp_text(text: str) -> str:
    """A WhatsApp text body: never empty, never over the API's limit."""
    text = text.strip() or "(no answer)"
    return text if len(text) <= WHATSAPP_TEXT_MAX else text[: WHATSAPP_TEXT_MAX - 1] + "…"


_MESSAGE_ID = re.compile(r"^<?([0-9a-f]{32})\.([0-9a-f]{32})@[^>]+>?$")


def rfc822_message_id(org: uuid.UUID, message_id: uuid.UUID, domain: str) -> str:
    """<message.organization@domain>: a provider's webhook names the Message-ID, and from it alone
    comms finds the tenant and the message (the webhook itself is signature-checked)."""
    return f"<{message_id.hex}.{org.hex}@{domain}>"


def parse_rfc822_message_id(value: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    """(organization, message) of a Message-ID comms made, else None."""
    m = _MESSAGE_ID.match(value.strip())
    return (uuid.UUID(m.group(2)), uuid.UUID(m.group(1))) if m else None
