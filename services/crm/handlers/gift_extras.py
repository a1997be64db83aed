"""What a gift carries besides its row, soft credits and split: its live tax receipt's number
and its tribute (read with it), and the tribute written with a new gift (crm.tribute.recorded,
which carries what comms needs to tell the notification recipient)."""

from __future__ import annotations

import uuid

from givance.events.v1 import crm_events_pb2

from chassis.convert import money
from chassis.db import UnitOfWork
from services.crm.domain.tributes import Tribute
from services.crm.handlers import tax_receipts
from services.crm.store import tributes as store
from services.crm.store.donations import Donation

__all__ = ["Tribute"]


async def attach(uow: UnitOfWork, org: uuid.UUID, gifts: list[Donation]) -> None:
    await tax_receipts.attach(uow, org, gifts)
    found = await store.of_gifts(uow.conn, org, [g.id for g in gifts])
    for g in gifts:
        g.tribute = found.get(g.id)


async def add_tribute(uow: UnitOfWork, org: uuid.UUID, gift: Donation, t: Tribute, contact: dict) -> None:
    await store.insert(uow.conn, org, gift.id, t)
    gift.tribute = t
    uow.publish("crm.tribute.recorded", crm_events_pb2.TributeRecordedEvent(
        donation_id=str(gift.id), donor_id=str(gift.donor_id), donor_first_name=contact.get("first_name") or "",
        donor_last_name=contact.get("last_name") or "", amount=money(gift.amount, gift.currency), kind=t.kind,
        honoree_name=t.honoree_name, notify_name=t.notify_name or "", notify_email=t.notify_email or "",
        notify_street=t.notify_street or "", notify_city=t.notify_city or "", notify_state=t.notify_state or "",
        notify_postal_code=t.notify_postal_code or "", notify_country=t.notify_country or "",
        message=t.message or ""), aggregate_type="donor", aggregate_id=str(gift.donor_id))
