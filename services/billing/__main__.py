"""python -m services.billing: the service's declaration; the chassis builds it (chassis.spec).

Beside the gRPC server (127.0.0.1:50055): the public webhook HTTP host (127.0.0.1:8082) and the
scheduler of due actions (trial ends, renewals, dunning)."""

from __future__ import annotations

from dataclasses import dataclass

from chassis.crypto import Keyring
from chassis.spec import Built, ServiceSpec
from services.billing.api.gateways import GatewayConfigServicer
from services.billing.api.invoices import InvoiceServicer
from services.billing.api.payment_methods import PaymentMethodServicer
from services.billing.api.plans import PlanServicer
from services.billing.api.subscriptions import SubscriptionServicer
from services.billing.api.usage import UsageServicer
from services.billing.api.webhooks import WebhookServer
from services.billing.consumers import SUBSCRIPTIONS
from services.billing.domain.clock import Clock
from services.billing.handlers.platform import PlatformEvents
from services.billing.handlers.scheduler import Policy, Scheduler
from services.billing.providers.platform_payments import DevelopmentCharger, PlatformCards, PlatformCharger
from services.billing.providers.platform_stripe import StripeCards, StripeCharger
from services.billing.settings import BillingSettings


@dataclass
class Own:
    keyring: Keyring
    clock: Clock
    charger: PlatformCharger
    cards: PlatformCards | None  # saving the organization's card: only with the platform's Stripe account
    policy: Policy


async def dependencies(b: Built[BillingSettings]) -> Own:
    s = b.settings
    stripe = (StripeCharger(s.platform_stripe_secret_key, s.platform_stripe_api_base)
              if s.platform_stripe_secret_key else None)
    charger: PlatformCharger = stripe or DevelopmentCharger()
    return Own(keyring=Keyring(s.encryption_keys), clock=Clock(), charger=charger,
               cards=StripeCards(stripe) if stripe else None,
               policy=Policy(s.dunning_retry_days, s.dunning_final_status))


def servicers(b: Built[BillingSettings]) -> list[object]:
    own: Own = b.own
    return [PlanServicer(b.db), SubscriptionServicer(b.db, own.charger, own.clock), InvoiceServicer(b.db, own.clock),
            UsageServicer(b.db), GatewayConfigServicer(b.db, own.keyring),
            PaymentMethodServicer(b.db, own.cards, b.settings.platform_stripe_publishable_key)]


def background(b: Built[BillingSettings]) -> list[object]:
    own: Own = b.own
    s = b.settings
    platform = PlatformEvents(b.db, s.platform_stripe_webhook_secret, s.webhook_tolerance_seconds, own.policy,
                              own.clock, own.cards)
    return [WebhookServer(b.db, own.keyring, host=s.webhook_host, port=s.webhook_port,
                          tolerance=s.webhook_tolerance_seconds, grace_seconds=s.grace_seconds, platform=platform),
            Scheduler(b.db, own.charger, own.clock, own.policy, s.scheduler_poll_seconds, s.scheduler_batch)]


SPEC = ServiceSpec(name="billing", settings=BillingSettings, servicers=servicers, subscriptions=SUBSCRIPTIONS,
                   dependencies=dependencies, background=background)
build = SPEC.build  # the tests' conftest builds every listed service the same way

if __name__ == "__main__":
    SPEC.serve()
