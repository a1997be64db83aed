"""billing's settings (prefix BILLING_)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from chassis.settings import ServiceSettings

# Development only: a published key seals nothing secret. Deployments set BILLING_ENCRYPTION_KEYS
# (kid:base64 32-byte key, comma-separated, the first one seals; chassis.crypto).
DEV_ENCRYPTION_KEYS = "bdev1:ZGV2LWJpbGxpbmctZGV2LWJpbGxpbmctZGV2LWJpbGw="


class BillingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="BILLING_", extra="ignore")

    port: int = 50055
    # The public webhook HTTP host (payment gateways post here): 127.0.0.1:8082; 0 picks a port.
    webhook_host: str = "127.0.0.1"
    webhook_port: int = 8082
    # Seals gateway credentials at rest (AES-256-GCM under a key id).
    encryption_keys: str = DEV_ENCRYPTION_KEYS
    # Stripe's own default: a signed event older than this (seconds) is refused.
    webhook_tolerance_seconds: int = 300
    # The plan a new organization's trial runs on (its current version).
    trial_plan_code: str = "starter"
    # Dunning: days after a failed renewal at which the payment is retried, then what the
    # subscription becomes when every retry failed: cancelled or unpaid (Stripe's two choices).
    dunning_retry_days: str = "1,3,5"
    dunning_final_status: str = "cancelled"
    # How often the scheduler looks for due actions (it is also woken by nothing else: rows are due by time).
    scheduler_poll_seconds: float = 5.0
    scheduler_batch: int = 100
    # The platform's own Stripe account, which collects organizations' invoices (Givance's revenue;
    # an organization's gifts use its own account, a gateway config). Without a secret key the
    # development charger collects nothing; without a webhook secret /webhooks/platform/stripe is 404.
    platform_stripe_secret_key: str = ""
    platform_stripe_webhook_secret: str = ""
    platform_stripe_publishable_key: str = ""  # pk_…: returned by SetupPaymentMethod for Stripe.js
    platform_stripe_api_base: str = ""  # empty: Stripe's own (https://api.stripe.com)

    def public_http_ports(self) -> set[int]:
        return {self.webhook_port} if self.webhook_port else set()
