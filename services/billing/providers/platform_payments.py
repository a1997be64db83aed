"""How the platform collects an organization's invoice (Givance's own revenue, never a donor's
gift): one small interface. The development default charges nothing and says so; it declines
for the organizations told to (a test, or a demo of dunning). The real one is
providers.platform_stripe (the platform's own Stripe account)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from services.billing.domain.platform import Card


@dataclass(frozen=True)
class ChargeResult:
    ok: bool
    reference: str = ""  # the provider's payment id (pi_…), when the provider made one
    failure: str = ""
    pending: bool = False  # the provider is still processing: its event will say how it ended

    @property
    def outcome(self) -> str:
        return "processing" if self.pending else "succeeded" if self.ok else "failed"


@dataclass(frozen=True)
class SavedCard:
    """The organization's card saved with the provider (billing.platform_customers): charged
    rather than whatever the provider's customer names as its default."""

    customer_id: str
    payment_method_id: str


class PlatformCharger(Protocol):
    async def charge(self, org: uuid.UUID, invoice_id: uuid.UUID, amount: Decimal, currency: str,
                     attempt: int = 1, saved: SavedCard | None = None) -> ChargeResult: ...


@dataclass
class DevelopmentCharger:
    """Offline: every charge succeeds (reference dev_…) unless the organization is in `declines`."""

    declines: set[uuid.UUID] = field(default_factory=set)

    async def charge(self, org: uuid.UUID, invoice_id: uuid.UUID, amount: Decimal, currency: str,
                     attempt: int = 1, saved: SavedCard | None = None) -> ChargeResult:
        if org in self.declines:
            return ChargeResult(ok=False, failure="card_declined (development charger)")
        return ChargeResult(ok=True, reference=f"dev_{invoice_id.hex[:16]}_{attempt}")


# -- the organization's card, saved with the platform's provider --------------------------------


class CardsUnavailable(Exception):
    """The provider could not be reached or refused the request: the caller may retry."""


@dataclass(frozen=True)
class Setup:
    """What the browser needs to collect a card (Stripe.js confirms the client secret)."""

    setup_intent_id: str
    client_secret: str
    customer_id: str


class PlatformCards(Protocol):
    """Saving the organization's card with the platform's provider (Stripe's SetupIntent flow).
    Without a provider configured (`None` in the handlers) nothing can be saved."""

    async def customer(self, org: uuid.UUID) -> str: ...

    async def setup(self, org: uuid.UUID, customer_id: str, request_id: str) -> Setup: ...

    async def card(self, payment_method_id: str) -> Card: ...

    async def detach(self, payment_method_id: str) -> None: ...
