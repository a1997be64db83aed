"""How the platform collects an organization's invoice (Givance's own revenue, never a donor's
gift): one small interface. The development default charges nothing and says so; it declines
for the organizations told to (a test, or a demo of dunning). The real one is
providers.platform_stripe (the platform's own Stripe account)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True)
class ChargeResult:
    ok: bool
    reference: str = ""  # the provider's payment id (pi_…), when the provider made one
    failure: str = ""
    pending: bool = False  # the provider is still processing: its event will say how it ended

    @property
    def outcome(self) -> str:
        return "processing" if self.pending else "succeeded" if self.ok else "failed"


class PlatformCharger(Protocol):
    async def charge(self, org: uuid.UUID, invoice_id: uuid.UUID, amount: Decimal, currency: str,
                     attempt: int = 1) -> ChargeResult: ...


@dataclass
class DevelopmentCharger:
    """Offline: every charge succeeds (reference dev_…) unless the organization is in `declines`."""

    declines: set[uuid.UUID] = field(default_factory=set)

    async def charge(self, org: uuid.UUID, invoice_id: uuid.UUID, amount: Decimal, currency: str,
                     attempt: int = 1) -> ChargeResult:
        if org in self.declines:
            return ChargeResult(ok=False, failure="card_declined (development charger)")
        return ChargeResult(ok=True, reference=f"dev_{invoice_id.hex[:16]}_{attempt}")
