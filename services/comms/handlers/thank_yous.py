"""Thank-yous on crm.donation.recorded, by the organization's settings: on or off, which template,
every gift or the first only, after a delay. Sent once per gift (the message's source key)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from chassis.db import UnitOfWork
from chassis.errors import NotFound, Violations
from services.comms.domain import addresses
from services.comms.handlers import templates as templates_handlers
from services.comms.handlers.deps import Deps
from services.comms.handlers.messages import Compose, queue
from services.comms.store import settings as settings_store

log = logging.getLogger(__name__)

SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "CAD": "CA$", "AUD": "A$"}


def amount_text(amount: Decimal, currency: str) -> str:
    symbol = SYMBOLS.get(currency)
    return f"{symbol}{amount:,.2f}" if symbol else f"{amount:,.2f} {currency}"


@dataclass(frozen=True)
class Donor:
    email: str
    first_name: str
    last_name: str


@dataclass(frozen=True)
class _Acting:
    metadata: tuple[tuple[str, str], ...]


async def donor_now(uow: UnitOfWork, deps: Deps, donor_id: str) -> Donor | None:
    """The donor's address and name as crm has them now, read with comms' own tenant token of the
    event's organization (no caller: chassis.tenant_tokens); None when comms has no principal.
    A donor gone since (or another organization's) has no address: no thank-you."""
    if deps.tenant_metadata is None:
        return None
    acting = _Acting(tuple(await deps.tenant_metadata(uow.tenant_id)))
    try:
        d = await deps.crm.donor(acting, donor_id)
    except NotFound:
        return Donor("", "", "")
    return Donor(d.email, d.first_name, d.last_name)


async def thank(uow: UnitOfWork, deps: Deps, *, donation_id: str, donor_id: str, email: str, first_name: str,
                last_name: str, first_gift: bool, amount: Decimal, currency: str, day: str) -> uuid.UUID | None:
    """Queues the thank-you for one gift (or nothing, by the settings); the message id or None."""
    org = uow.tenant_id
    s = await settings_store.get(uow.conn, org)
    if not s["thank_you_enabled"] or (s["thank_you_first_gift_only"] and not first_gift):
        return None
    v = Violations()
    address = addresses.email(email, "donor_email", v) if email else ""
    if not address:
        log.info("comms: no thank-you for gift %s: the donor has no usable email address", donation_id)
        return None
    try:
        template = await templates_handlers.resolve(uow.conn, org, s["thank_you_template"] or "thank-you")
    except NotFound:
        log.warning("comms: thank-you template %r is gone; the system one is used", s["thank_you_template"])
        template = await templates_handlers.resolve(uow.conn, org, "thank-you")
    delay = s["thank_you_delay_seconds"]
    donor = {"id": donor_id, "first_name": first_name, "last_name": last_name, "email": address,
             "display_name": f"{first_name} {last_name}".strip(), "salutation": f"{first_name} {last_name}".strip()}
    variables = {k: v for k, v in {"amount": amount_text(amount, currency), "date": day}.items()
                 if k in template.variables}
    message_id, _ = await queue(uow, deps, org, Compose(
        channel="email", to_address=address, template=template, variables=variables, category=template.category,
        donor_id=uuid.UUID(donor_id), donor=donor, bulk=True, source_key=f"thank-you:{donation_id}",
        schedule_at=datetime.now(UTC) + timedelta(seconds=delay) if delay else None))
    deps.kick.set()
    return message_id
