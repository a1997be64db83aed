"""What a provider is asked to deliver, and how it can fail (the providers' shared vocabulary)."""

from __future__ import annotations

from dataclasses import dataclass, field
from email.headerregistry import Address
from email.utils import getaddresses


class TransientFailure(Exception):
    """Try again later (SMTP 4xx, a timeout, the server unreachable, HTTP 429/5xx)."""


class PermanentFailure(Exception):
    """Never deliverable as it is (SMTP 5xx, a provider's 4xx refusal): a bounce."""


@dataclass
class Dkim:
    domain: str
    selector: str
    private_key_pem: bytes


@dataclass
class OutgoingEmail:
    sender: str  # "Name <addr>" or "addr": the From header; its address is the envelope sender
    to: str
    subject: str
    text: str
    html: str = ""
    message_id: str = ""  # "<...@...>"
    reply_to: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    attachments: list[tuple[str, str, bytes]] = field(default_factory=list)  # (name, mime type, content)
    dkim: Dkim | None = None


def format_sender(name: str, address: str) -> str:
    """A From header: "Name <address>" (quoted and encoded as needed), or the bare address."""
    if not name:
        return address
    local, _, domain = address.partition("@")
    return str(Address(display_name=name, username=local, domain=domain))


def envelope_address(header_value: str) -> str:
    return getaddresses([header_value])[0][1]


def domain_of(header_value: str) -> str:
    return envelope_address(header_value).rpartition("@")[2] or "givance.local"
