"""Donor use cases: create, get, list, update, delete."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any

from chassis import paging
from chassis.audit import ReadAudit
from chassis.db import Database
from chassis.errors import Aborted, InvalidArgument, NotFound, Violations
from chassis.ids import parse_id
from services.crm.domain import donors as rules
from services.crm.domain.donor_matching import check_restorable
from services.crm.domain.journeys import stage_ids
from services.crm.store import donor_matching as matching_store
from services.crm.store import donors as store
from services.crm.store import journeys as journey_store


async def _stages(uow, org: uuid.UUID) -> set[str]:
    return stage_ids(await journey_store.get_graph(uow.conn, org))


async def create_donor(db: Database, org: uuid.UUID, fields: rules.DonorFields, request_id: str) -> dict:
    if len(request_id) > 100:
        raise InvalidArgument.field("request_id", "must be at most 100 characters")
    async with db.unit_of_work(org) as uow:
        v = Violations()
        clean = rules.normalize(fields, "donor", v, await _stages(uow, org))
        v.raise_if_any()
        row = await store.insert(uow.conn, org, uuid.uuid4(), clean.as_dict(), request_id or None)
        if row is None:  # AIP-155: the request was served before; return its result
            return await store.by_request_id(uow.conn, org, request_id)
        await matching_store.refresh_candidates(uow.conn, org, [row["id"]])
        uow.audit("crm.donor.create", "donor", str(row["id"]), after=_audited(row))
        return row


async def get_donor(db: Database, reads: ReadAudit, org: uuid.UUID, donor_id: str) -> dict:
    did = parse_id(donor_id, "id")
    async with db.unit_of_work(org) as uow:
        row = await store.get(uow.conn, org, did)
        if row is None:  # a merged donor's id resolves to the donor it was merged into
            survivor = await matching_store.merged_into(uow.conn, org, did)
            row = await store.get(uow.conn, org, survivor) if survivor else None
    if row is None:
        raise NotFound(f"donor {donor_id} not found")
    # The donor comes with its giving totals: a read of financial data, audited (in a batch).
    reads.record("crm.donor.read", "donor", str(row["id"]))
    return row


@dataclass(frozen=True)
class ListDonors:
    page_size: int = 0
    page_token: str = ""
    journey_stage: str = ""
    tag: str = ""
    email: str = ""
    order_by: str = ""


async def list_donors(db: Database, reads: ReadAudit, org: uuid.UUID, q: ListDonors) -> tuple[list[dict], str]:
    size = paging.page_size(q.page_size)
    order_by = " ".join(q.order_by.split()).lower() or "create_time desc"
    if order_by == "create_time asc":
        order_by = "create_time"
    if order_by == "last_name asc":
        order_by = "last_name"
    if order_by not in store.ORDERINGS:
        raise InvalidArgument.field("order_by", f"must be one of: {', '.join(store.ORDERINGS)}")
    fp = paging.fingerprint(order_by, q.journey_stage, q.tag, q.email.lower())
    after = paging.decode(q.page_token, fp)
    column = store.ORDERINGS[order_by][0]
    if after is not None:
        after = _parse_key(after, column)
    async with db.unit_of_work(org) as uow:
        rows = await store.page(uow.conn, org, order_by=order_by, after=after, limit=size + 1,
                                journey_stage=q.journey_stage or None, tag=q.tag or None, email=q.email or None)
    token = ""
    if len(rows) > size:
        rows = rows[:size]
        last = rows[-1]
        token = paging.encode([_key_value(last[column]), str(last["id"])], fp)
    reads.record("crm.donor.list", "donor", "", after={"returned": len(rows)})  # giving totals: financial
    return rows, token


def _key_value(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _parse_key(key: list, column: str) -> list:
    from datetime import datetime

    try:
        value, last_id = key
        parsed = datetime.fromisoformat(value) if column == "created_at" else str(value)
        return [parsed, uuid.UUID(last_id)]
    except (ValueError, TypeError):
        raise InvalidArgument.field("page_token", "is not a page token this method issued") from None


def _check_etag(row: dict, etag: str, field: str) -> None:
    if etag and etag != rules.etag(row["version"]):
        raise Aborted(f"the donor changed since it was read ({field} is stale); read it again",
                      reason="ETAG_MISMATCH")


async def update_donor(db: Database, org: uuid.UUID, donor_id: str, etag: str, patch: rules.DonorFields,
                       mask: list[str]) -> dict:
    did = parse_id(donor_id, "donor.id")
    v = Violations()
    attrs = rules.expand_mask(mask, "update_mask", v)
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        row = await store.get_for_update(uow.conn, org, did)
        if row is None:
            raise NotFound(f"donor {donor_id} not found")
        _check_etag(row, etag, "donor.etag")
        current = _fields_of(row)
        merged = replace(current, **{a: getattr(patch, a) for a in attrs})
        clean = rules.normalize(merged, "donor", v, await _stages(uow, org))
        if clean.journey_stage != row["journey_stage"]:
            # A stage changes along the journey's transitions, with a reason and a history entry.
            v.add("donor.journey_stage", "changes only through JourneyService.MoveDonorStage")
        v.raise_if_any()
        updated = await store.update(uow.conn, org, did, clean.as_dict())
        if any(row[f] != updated[f] for f in _MATCHED):
            await matching_store.refresh_candidates(uow.conn, org, [did])
        uow.audit_change("crm.donor.update", "donor", str(did), _audited(row), _audited(updated))
        return updated


async def delete_donor(db: Database, org: uuid.UUID, donor_id: str, etag: str) -> dict:
    did = parse_id(donor_id, "id")
    async with db.unit_of_work(org) as uow:
        row = await store.get_for_update(uow.conn, org, did)
        if row is None:
            raise NotFound(f"donor {donor_id} not found")
        _check_etag(row, etag, "etag")
        deleted = await store.soft_delete(uow.conn, org, did)
        await matching_store.forget_candidates(uow.conn, org, [did])
        uow.audit("crm.donor.delete", "donor", str(did), before=_audited(row))
        return deleted


async def restore_donor(db: Database, org: uuid.UUID, donor_id: str, etag: str) -> dict:
    """Undo a soft delete that was not a merge."""
    did = parse_id(donor_id, "id")
    async with db.unit_of_work(org) as uow:
        row = await store.get_any_for_update(uow.conn, org, did)
        check_restorable(row, donor_id)
        _check_etag(row, etag, "etag")
        restored = await store.restore(uow.conn, org, did)
        await matching_store.refresh_candidates(uow.conn, org, [did])
        uow.audit("crm.donor.restore", "donor", str(did), before={"deleted_at": row["deleted_at"]},
                  after=_audited(restored))
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


def _audited(row: dict) -> dict:
    return {k: row.get(k) for k in _AUDITED}


def _fields_of(row: dict) -> rules.DonorFields:
    return rules.DonorFields(
        external_id=row["external_id"], donor_type=row["donor_type"], first_name=row["first_name"],
        last_name=row["last_name"], email=row["email"], phone=row["phone"],
        spouse_first_name=row["spouse_first_name"], spouse_last_name=row["spouse_last_name"],
        spouse_email=row["spouse_email"], address_street=row["address_street"], address_city=row["address_city"],
        address_state=row["address_state"], address_zip=row["address_zip"], address_country=row["address_country"],
        journey_stage=row["journey_stage"], ai_classification=row["ai_classification"],
        last_contact_at=row["last_contact_at"], notes=row["notes"], tags=list(row["tags"] or []),
        custom_fields=row["custom_fields"] or {}, formal_salutation=row.get("formal_salutation"),
        informal_salutation=row.get("informal_salutation"),
    )
