"""crm.donation.recorded -> a thank-you, by the organization's settings (handlers.thank_yous).

The donor's address and name are read from crm with comms' own tenant token (its platform
service principal: chassis.tenant_tokens), as crm has them now; only a comms without a principal
takes them from the event."""

from __future__ import annotations

from givance.events.v1 import crm_events_pb2, event_pb2

from chassis import events
from chassis.convert import from_money
from chassis.db import UnitOfWork
from services.comms.consumers.bound import Bound
from services.comms.handlers import thank_yous

QUEUE = "comms.thank-yous"
BINDINGS = ["crm.donation.recorded"]


class ThankYous(Bound):
    async def __call__(self, uow: UnitOfWork, event: event_pb2.Event) -> None:
        gift = events.unpack(event, crm_events_pb2.DonationRecordedEvent)
        deps = self.deps_for(uow)
        donor = await thank_yous.donor_now(uow, deps, gift.donor_id)
        if donor is None:  # comms has no principal: what the event carries
            donor = thank_yous.Donor(gift.donor_email, gift.donor_first_name, gift.donor_last_name)
        await thank_yous.thank(
            uow, deps, donation_id=gift.donation_id, donor_id=gift.donor_id, email=donor.email,
            first_name=donor.first_name, last_name=donor.last_name, first_gift=gift.first_gift,
            amount=from_money(gift.amount), currency=gift.amount.currency_code,
            day=f"{gift.date.year:04d}-{gift.date.month:02d}-{gift.date.day:02d}")


on_donation_recorded = ThankYous()
