"""Donor use cases: create, get, list, update, delete."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields, replace
from datetime import datetime

from givance.events.v1 import crm_events_pb2

from chassis.audit import ReadAudit
from chassis.db import Database
from chassis.errors import InvalidArgument, NotFound, Violations
from chassis.resource import Keyset, check_etag, check_request_id, current, parse_id, update_request
from services.crm.domain import donors as rules
from services.crm.domain.donor_matching import check_restorable
from services.crm.domain.donors import DonorFields
from services.crm.domain.journeys import stage_ids
from services.crm.handlers import entitlements, households
from services.crm.store import donor_matching as matching_store
from services.crm.store import donors as store
from services.crm.store import journeys as journey_store
from services.crm.store.donors import Donor


async def _stages(uow, org: uuid.UUID) -> set[str]:
    return stage_ids(await journey_store.get_graph(uow.conn, org))


async def create_donor(db: Database, org: uuid.UUID, fields: DonorFields, request_id: str) -> Donor:
    check_request_id(request_id)
    async with db.unit_of_work(org) as uow:
        v = Violations()
        clean = rules.normalize(fields, "donor", v, await _stages(uow, org))
        v.raise_if_any()
        if request_id:
            first = await store.by_request_id(uow.conn, org, request_id)
            if first is not None:  # AIP-155: the request was served before; return its result
                return first
        await entitlements.check_room_for_donors(uow, org)  # the plan's donor limit (billing's replica)
        row = await store.insert(uow.conn, org, uuid.uuid4(), clean.as_dict(), request_id or None)
        if row is None:  # AIP-155: the request was served before; return its result
            return await store.by_request_id(uow.conn, org, request_id)
        uow.publish("crm.donor.created", crm_events_pb2.DonorCreatedEvent(donor_id=str(row.id)),
                    aggregate_type="donor", aggregate_id=str(row.id))
        await matching_store.refresh_candidates(uow.conn, org, [row.id])
        uow.audit("crm.donor.create", "donor", str(row.id), after=audited(row))
        return row


async def get_donor(db: Database, reads: ReadAudit, org: uuid.UUID, donor_id: str) -> Donor:
    did = parse_id(donor_id, "id")
    async with db.unit_of_work(org) as uow:
        row = await store.get(uow.conn, org, did)
        if row is None:  # a merged donor's id resolves to the donor it was merged into
            survivor = await matching_store.merged_into(uow.conn, org, did)
            row = await store.get(uow.conn, org, survivor) if survivor else None
    if row is None:
        raise NotFound(f"donor {donor_id} not found")
    # The donor comes with its giving totals: a read of financial data, audited (in a batch).
    reads.record("crm.donor.read", "donor", str(row.id))
    return row


@dataclass(frozen=True)
class ListDonors:
    page_size: int = 0
    page_token: str = ""
    journey_stage: str = ""
    tag: str = ""
    email: str = ""
    order_by: str = ""


async def list_donors(db: Database, reads: ReadAudit, org: uuid.UUID, q: ListDonors) -> tuple[list[Donor], str]:
    order_by = " ".join(q.order_by.split()).lower() or "create_time desc"
    if order_by == "create_time asc":
        order_by = "create_time"
    if order_by == "last_name asc":
        order_by = "last_name"
    if order_by not in store.ORDERINGS:
        raise InvalidArgument.field("order_by", f"must be one of: {', '.join(store.ORDERINGS)}")
    column = store.ORDERINGS[order_by][0]
    page = Keyset.of(q.page_size, q.page_token, (order_by, q.journey_stage, q.tag, q.email.lower()),
                     (datetime.fromisoformat if column == "created_at" else str, uuid.UUID))
    async with db.unit_of_work(org) as uow:
        rows = await store.page(uow.conn, org, order_by=order_by, after=page.after, limit=page.limit,
                                journey_stage=q.journey_stage or None, tag=q.tag or None, email=q.email or None)
    rows, token = page.cut(rows, lambda r: (getattr(r, column), r.id))
    reads.record("crm.donor.list", "donor", "", after={"returned": len(rows)})  # giving totals: financial
    return rows, token


async def update_donor(db: Database, org: uuid.UUID, donor_id: str, etag: str, patch: DonorFields,
                       mask: list[str]) -> Donor:
    did, attrs = update_request(donor_id, "donor.id", mask, rules.PATH_TO_ATTR)
    v = Violations()
    async with db.unit_of_work(org) as uow:
        row = current(await store.get_for_update(uow.conn, org, did), "donor", donor_id, etag, "donor.etag")
        merged = replace(_fields_of(row), **{a: getattr(patch, a) for a in attrs})
        clean = rules.normalize(merged, "donor", v, await _stages(uow, org))
        if clean.journey_stage != row.journey_stage:
            # A stage changes along the journey's transitions, with a reason and a history entry.
            v.add("donor.journey_stage", "changes only through JourneyService.MoveDonorStage")
        v.raise_if_any()
        updated = await store.update(uow.conn, org, did, clean.as_dict())
        if any(getattr(row, f) != getattr(updated, f) for f in _MATCHED):
            await matching_store.refresh_candidates(uow.conn, org, [did])
        uow.audit_change("crm.donor.update", "donor", str(did), audited(row), audited(updated))
        return updated


async def delete_donor(db: Database, org: uuid.UUID, donor_id: str, etag: str) -> Donor:
    did = parse_id(donor_id, "id")
    async with db.unit_of_work(org) as uow:
        row = current(await store.get_for_update(uow.conn, org, did), "donor", donor_id, etag, "etag")
        deleted = await store.soft_delete(uow.conn, org, did)
        await households.donor_gone(uow, org, did, "deleted")
        await matching_store.forget_candidates(uow.conn, org, [did])
        uow.audit("crm.donor.delete", "donor", str(did), before=audited(row))
        return deleted


async def restore_donor(db: Database, org: uuid.UUID, donor_id: str, etag: str) -> Donor:
    """Undo a soft delete that was not a merge."""
    did = parse_id(donor_id, "id")
    async with db.unit_of_work(org) as uow:
        row = await store.get_any_for_update(uow.conn, org, did)
        check_restorable(row, donor_id)
        check_etag(etag, row.version, "donor", "etag")
        restored = await store.restore(uow.conn, org, did)
        await matching_store.refresh_candidates(uow.conn, org, [did])
        uow.audit("crm.donor.restore", "donor", str(did), before={"deleted_at": row.deleted_at},
                  after=audited(restored))
        return restored


# The fields duplicate pairs are found by: a change to one refreshes the donor's pairs.
_MATCHED = ("first_name", "last_name", "email", "phone", "address_street", "address_city", "address_zip",
            "address_country")


# What the audit trail keeps of a donor (before and after a change).
_AUDITED = (
    "external_id", "donor_type", "first_name", "last_name", "email", "phone", "spouse_first_name",
    "spouse_last_name", "spouse_email", "address_street", "address_city", "address_state", "address_zip",
    "address_country", "journey_stage", "ai_classification", "last_contact_at", "notes", "tags", "custom_fields",
    "formal_salutation", "informal_salutation",
)


def audited(row: Donor) -> dict:
    """What the audit trail keeps of a donor."""
    return {k: getattr(row, k) for k in _AUDITED}


_FIELDS = tuple(f.name for f in fields(DonorFields))


def _fields_of(row: Donor) -> DonorFields:
    current = DonorFields(**{name: getattr(row, name) for name in _FIELDS})
    current.tags = list(row.tags or [])
    current.custom_fields = row.custom_fields or {}
    return current


async def record_contact(uow, donor_id: uuid.UUID, when: datetime) -> None:
    """comms logged a contact with the donor (comms.communication.logged)."""
    await store.record_contact(uow.conn, uow.tenant_id, donor_id, when)


async def record_email_status(uow, donor_id: uuid.UUID, address: str, status: str, when: datetime) -> None:
    """comms reported a bounce, a complaint or an unsubscribe from everything for the donor's address."""
    await store.record_email_status(uow.conn, uow.tenant_id, donor_id, address, status, when)
