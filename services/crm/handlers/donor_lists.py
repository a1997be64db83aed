"""Donor list use cases: create, get, list, update, delete, add and remove members, read members."""

from __future__ import annotations

import uuid
from datetime import datetime

from chassis.audit import ReadAudit
from chassis.db import Database
from chassis.errors import NotFound, Violations
from chassis.resource import Keyset, check_etag, check_request_id, expand_mask, parse_id
from services.crm.domain import donor_lists as rules
from services.crm.domain.donor_lists import ListFields, ListFilter
from services.crm.domain.donor_lists import Money as Money  # the api builds filters of it
from services.crm.store import donor_lists as store
from services.crm.store.donor_lists import DonorList
from services.crm.store.donors import Donor


def _audited(row: DonorList) -> dict:
    return {k: getattr(row, k) for k in ("name", "description", "type", "filters")}


def _actor(principal_id: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(principal_id) if principal_id else None
    except ValueError:
        return None


async def _with_count(conn, org: uuid.UUID, row: DonorList) -> DonorList:
    if row.type == rules.DYNAMIC and row.deleted_at is None:
        row.donor_count = await store.count_matching(conn, org, row)
    return row


async def _live(conn, org: uuid.UUID, list_id: uuid.UUID, raw_id: str, *, for_update: bool = False) -> DonorList:
    row = await store.get(conn, org, list_id, for_update=for_update)
    if row is None:
        raise NotFound(f"donor list {raw_id} not found")
    return row


async def create_list(db: Database, org: uuid.UUID, fields: ListFields, request_id: str,
                      principal_id: str | None) -> DonorList:
    v = Violations()
    check_request_id(request_id, v)
    values = {"name": rules.check_name(fields.name, "donor_list.name", v),
              "description": rules.check_description(fields.description, "donor_list.description", v),
              "type": rules.check_type(fields.type, "donor_list.type", v), "filters": {}}
    rules.check_filter_allowed(values["type"], fields.filter is not None, "donor_list.filter", v)
    if fields.filter is not None and values["type"] == rules.DYNAMIC:
        values["filters"] = rules.normalize_filter(fields.filter, "donor_list.filter", v)
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        list_id = uuid.uuid4()
        if not await store.insert(uow.conn, org, list_id, values, request_id or None, _actor(principal_id)):
            # AIP-155: the request was served before; return that list
            list_id = await store.id_by_request_id(uow.conn, org, request_id)
            return await _with_count(uow.conn, org, await store.get(uow.conn, org, list_id, include_deleted=True))
        row = await store.get(uow.conn, org, list_id)
        uow.audit("crm.donor_list.create", "donor_list", str(list_id), after=_audited(row))
        return await _with_count(uow.conn, org, row)


async def get_list(db: Database, org: uuid.UUID, list_id: str) -> DonorList:
    lid = parse_id(list_id, "id")
    async with db.unit_of_work(org) as uow:
        return await _with_count(uow.conn, org, await _live(uow.conn, org, lid, list_id))


_TIME_ID = (datetime.fromisoformat, uuid.UUID)


def _time_id(row: DonorList | Donor) -> tuple:
    return row.created_at, row.id


async def list_lists(db: Database, org: uuid.UUID, page_size: int,
                     page_token: str) -> tuple[list[DonorList], str]:
    page = Keyset.of(page_size, page_token, ("donor_lists",), _TIME_ID)
    async with db.unit_of_work(org) as uow:
        rows, token = page.cut(await store.page(uow.conn, org, after=page.after, limit=page.limit), _time_id)
        return [await _with_count(uow.conn, org, r) for r in rows], token


async def update_list(db: Database, org: uuid.UUID, list_id: str, etag: str, patch: ListFields,
                      mask: list[str]) -> DonorList:
    lid = parse_id(list_id, "donor_list.id")
    v = Violations()
    async with db.unit_of_work(org) as uow:
        row = await _live(uow.conn, org, lid, list_id, for_update=True)
        paths = expand_mask(mask, rules.PATHS, "update_mask", v, default=rules.DEFAULT_PATHS[row.type])
        values = {"name": row.name, "description": row.description, "filters": row.filters or {}}
        if "name" in paths:
            values["name"] = rules.check_name(patch.name, "donor_list.name", v)
        if "description" in paths:
            values["description"] = rules.check_description(patch.description, "donor_list.description", v)
        if "filter" in paths:
            if row.type == rules.STATIC:
                v.add("donor_list.filter", "only a dynamic list has a filter")
            else:
                values["filters"] = rules.normalize_filter(patch.filter or ListFilter(), "donor_list.filter", v)
        v.raise_if_any()
        check_etag(etag, row.version, "donor list", "donor_list.etag")
        await store.update(uow.conn, org, lid, values)
        updated = await store.get(uow.conn, org, lid)
        uow.audit_change("crm.donor_list.update", "donor_list", str(lid), _audited(row), _audited(updated))
        return await _with_count(uow.conn, org, updated)


async def delete_list(db: Database, org: uuid.UUID, list_id: str, etag: str) -> DonorList:
    lid = parse_id(list_id, "id")
    async with db.unit_of_work(org) as uow:
        row = await _live(uow.conn, org, lid, list_id, for_update=True)
        check_etag(etag, row.version, "donor list", "etag")
        await store.soft_delete(uow.conn, org, lid)
        uow.audit("crm.donor_list.delete", "donor_list", str(lid), before=_audited(row))
        return await store.get(uow.conn, org, lid, include_deleted=True)


async def _change_members(db: Database, org: uuid.UUID, list_id: str, donor_ids: list[str], *, add: bool,
                          principal_id: str | None) -> tuple[DonorList, int]:
    lid = parse_id(list_id, "list_id")
    v = Violations()
    ids = rules.parse_donor_ids(donor_ids, "donor_ids", v)
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        # the list row lock serializes membership changes of one list
        row = await _live(uow.conn, org, lid, list_id, for_update=True)
        rules.check_static(row.type, list_id)
        known = await store.existing_donors(uow.conn, org, ids, live_only=add)
        for i, raw in enumerate(donor_ids):
            try:
                if uuid.UUID(raw) not in known:
                    v.add(f"donor_ids[{i}]", "is not a donor of this organization"
                          + (" (or it was deleted)" if add else ""))
            except ValueError:  # reported above
                pass
        v.raise_if_any()
        if add:
            count = await store.add_members(uow.conn, org, lid, ids, _actor(principal_id))
        else:
            count = await store.remove_members(uow.conn, org, lid, ids)
        if count:
            action = "crm.donor_list.add_members" if add else "crm.donor_list.remove_members"
            uow.audit(action, "donor_list", str(lid), after={"donor_ids": [str(i) for i in ids], "changed": count})
        return await store.get(uow.conn, org, lid), count


async def add_members(db: Database, org: uuid.UUID, list_id: str, donor_ids: list[str],
                      principal_id: str | None) -> tuple[DonorList, int]:
    return await _change_members(db, org, list_id, donor_ids, add=True, principal_id=principal_id)


async def remove_members(db: Database, org: uuid.UUID, list_id: str, donor_ids: list[str]) -> tuple[DonorList, int]:
    return await _change_members(db, org, list_id, donor_ids, add=False, principal_id=None)


async def list_members(db: Database, reads: ReadAudit, org: uuid.UUID, list_id: str, page_size: int,
                       page_token: str) -> tuple[list[Donor], str]:
    lid = parse_id(list_id, "list_id")
    page = Keyset.of(page_size, page_token, ("donor_list_members", str(lid)), _TIME_ID)
    async with db.unit_of_work(org) as uow:
        row = await _live(uow.conn, org, lid, list_id)
        rows = await store.member_page(uow.conn, org, row, after=page.after, limit=page.limit)
    rows, token = page.cut(rows, _time_id)
    # donors with their giving totals: financial data
    reads.record("crm.donor_list.list_members", "donor_list", str(lid), after={"returned": len(rows)})
    return rows, token
