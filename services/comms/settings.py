"""comms' settings (prefix COMMS_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from chassis.crypto import DEV_EVENT_SECRET_KEYS
from chassis.settings import ServiceSettings

# Development only (published): deployments set COMMS_ENCRYPTION_KEYS and COMMS_TRACKING_KEYS.
DEV_ENCRYPTION_KEYS = "cdev1:Y29tbXMtZGV2LW9ubHktZGV2LW9ubHktZGV2LW9ubHk="
DEV_TRACKING_KEYS = "tdev1:Y29tbXMtdHJhY2tpbmctZGV2LW9ubHktZGV2LW9ubHk="
DEV_MAIL_DIR = "var/mail"


class CommsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="COMMS_", extra="ignore")

    port: int = 50053
    # What comms' service principal must be granted (COMMS_PRINCIPAL_CLIENT_ID and _SECRET): a
    # thank-you reads the donor's address and name from crm (chassis.tenant_tokens).
    principal_permissions: ClassVar[tuple[str, ...]] = ("crm.donors.read",)
    # Public HTTP (tracking, unsubscribe, provider webhooks). Unset: 8081 beside the default gRPC
    # port (8081 + its offset from 50053), an ephemeral one otherwise (tests); -1 turns it off.
    http_port: int | None = None
    # Where links in emails point (the ingress in front of the public HTTP).
    public_url: str = "http://127.0.0.1:8081"
    # Seals DKIM keys and provider secrets at rest (kid:base64 32-byte key, first one seals).
    encryption_keys: str = DEV_ENCRYPTION_KEYS
    # identity's event secret keys: opens the links and codes identity seals for comms.
    event_secret_keys: str = DEV_EVENT_SECRET_KEYS
    # HMAC keys of tracking and unsubscribe tokens (kid:base64 key, first one signs; rotate by
    # putting the new key first and keeping the old one while its mails are read).
    tracking_keys: str = DEV_TRACKING_KEYS
    # crm (donor addresses, receipt figures), with the caller's token forwarded.
    crm_address: str = "127.0.0.1:50052"

    # Email: SMTP. The development default is the mail catcher `make run` starts.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str = ""
    smtp_password: str = ""
    # "none", "starttls" or "tls" (implicit TLS, port 465).
    smtp_security: str = "none"
    smtp_timeout_seconds: float = 10.0
    # SMTP connections kept open and reused by the sender.
    smtp_connections: int = 4
    # The suite's sender when an organization set none.
    default_from: str = "Givance <no-reply@givance.local>"
    # Where the development mail catcher keeps mail, and where the development SMS/WhatsApp
    # provider writes messages (beside it).
    mail_dir: str = DEV_MAIL_DIR
    # Development: run the mail catcher (aiosmtpd) on smtp_host:smtp_port (`make run` sets it).
    mail_catcher: bool = False

    # SMS/WhatsApp: "dev" (written to mail_dir/sms) or "twilio" (its Messages API).
    sms_provider: str = "dev"
    twilio_base_url: str = "https://api.twilio.com"
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_from: str = ""

    # The List-Unsubscribe mailto: unsubscribe+<token>@<unsubscribe_domain> (empty: the domain of
    # the organization's From address). Mail to it reaches comms through its inbound SMTP server
    # (inbound_smtp_port; -1: off, 0: an ephemeral port) or, in development, the mail catcher.
    unsubscribe_domain: str = ""
    inbound_smtp_port: int = -1
    # Where deployments (Kubernetes, compose) run it: unprivileged, as the pods run without
    # capabilities; the comms-smtp load balancer takes mail servers' port 25 to it.
    deployed_inbound_smtp_port: ClassVar[int] = 2525

    # Provider webhooks: Mailgun's HTTP webhook signing key; Meta's app secret and verify token.
    mailgun_signing_key: str = ""
    # SendGrid's signed event webhook: its verification key (base64 DER as SendGrid shows it, or PEM).
    sendgrid_verification_key: str = ""
    whatsapp_app_secret: str = ""
    whatsapp_verify_token: str = ""
    # WhatsApp replies (the ai assistant's answers to staff): "dev" (written to mail_dir/sms) or
    # "cloud" (Meta's WhatsApp Cloud API: its Graph API root, the business number's id, a token).
    whatsapp_provider: str = "dev"
    whatsapp_api_url: str = "https://graph.facebook.com/v21.0"
    whatsapp_phone_number_id: str = ""
    whatsapp_access_token: str = ""

    # The send queue: attempts before a transient failure becomes FAILED; jobs claimed at once.
    send_max_attempts: int = 5
    send_backoff_seconds: float = 2.0
    send_batch: int = 50
    # An open within this many seconds of sending is a machine's (privacy proxies, scanners).
    machine_open_seconds: float = 2.0

    def public_http_ports(self) -> set[int]:
        port = self.resolved_http_port()
        return {port} if port else set()

    def public_tcp_ports(self) -> set[int]:
        return {self.deployed_inbound_smtp_port}

    def resolved_http_port(self) -> int | None:
        if self.http_port is not None:
            return None if self.http_port < 0 else self.http_port
        return 8081 + self.port - 50053 if 50053 <= self.port < 50153 else 0
