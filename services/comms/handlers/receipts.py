"""Yearly receipts: crm's GetReceiptSummary figures, a PDF, the receipt email, crm's flags."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from chassis.errors import FailedPrecondition, Violations
from chassis.resource import check_request_id, parse_id
from services.comms.domain import addresses
from services.comms.handlers import templates as templates_handlers
from services.comms.handlers.deps import Deps
from services.comms.handlers.messages import Compose, queue
from services.comms.store import messages as store
from services.comms.store import settings as settings_store
from services.comms.store.messages import MessageRow


async def send_receipt(deps: Deps, org: uuid.UUID, caller: Any, request_id: str, donor_id: str,
                       year: int) -> tuple[MessageRow, list[str]]:
    v = Violations()
    check_request_id(request_id, v)
    donor = parse_id(donor_id, "donor_id", v)
    if not 1900 <= year <= datetime.now(UTC).year:
        v.add("year", "must be a past or the current calendar year")
    v.raise_if_any()
    key = f"receipt:{donor}:{year}:{request_id}" if request_id else None
    async with deps.db.unit_of_work(org) as uow:
        if key is not None:
            earlier = await store.id_by_source_key(uow.conn, org, key)
            if earlier is not None:
                return await store.get(uow.conn, org, earlier), []
        template = await templates_handlers.resolve(uow.conn, org, "receipt")
        sending = await settings_store.get(uow.conn, org)
    contact = await deps.crm.donor(caller, str(donor))
    if not contact.email:
        raise FailedPrecondition("the donor has no email address", reason="DONOR_HAS_NO_ADDRESS")
    address = addresses.email(contact.email, "donor_id", v)
    v.raise_if_any()
    totals = await deps.crm.receipt_summary(caller, str(donor), year)
    if not totals:
        raise FailedPrecondition(f"the donor gave no deductible gifts in {year}", reason="NOTHING_TO_RECEIPT")
    donation_ids = [g[0] for t in totals for g in t.gifts]
    organization = sending["from_name"] or "Givance"
    pdf = deps.pdf(organization, contact.as_variables()["display_name"] or contact.email, year, totals)
    total_text = ", ".join(f"{t.total} {t.currency}" for t in totals)
    async with deps.db.unit_of_work(org) as uow:
        message_id, _ = await queue(uow, deps, org, Compose(
            channel="email", to_address=address, template=template,
            variables={"year": year, "total": total_text, "gift_count": sum(t.gift_count for t in totals)},
            category="receipts", donor_id=donor, donor=contact.as_variables(), source_key=key,
            attachment=(f"receipt-{year}.pdf", pdf)))
        row = await store.get(uow.conn, org, message_id)
    deps.kick.set()
    await deps.crm.mark_receipts_sent(caller, donation_ids)
    return row, donation_ids
