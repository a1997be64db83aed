"""crm's donor list SQL: lists, static memberships, and a dynamic filter turned into a
WHERE clause over crm.donors (values always bound, never spliced)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from chassis import sql
from chassis.db import Connection
from chassis.sql import Where, json_object
from services.crm.store.donors import DONOR_COLUMNS, GIVING_COLUMN, Donor, to_donor

_COLUMNS = ("l.id, l.organization_id, l.name, l.description, l.type, l.filters, l.donor_count, l.version, "
            "l.created_at, l.updated_at, l.deleted_at")


@dataclass(slots=True)
class DonorList:
    """A stored donor list. `filters` is a dynamic list's stored filter document ({} for a static
    list); `donor_count` is kept by trigger for a static list, counted on read for a dynamic one."""

    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    description: str | None
    type: str
    filters: dict[str, Any]
    donor_count: int
    version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


# Built by position: the list's _COLUMNS are a DonorList's fields, in order.
assert [c.removeprefix("l.") for c in _COLUMNS.split(", ")] == [f.name for f in fields(DonorList)]


def _row(m: Any) -> DonorList:
    row = DonorList(*m)
    row.filters = json_object(row.filters)
    return row


async def insert(conn: Connection, org: uuid.UUID, list_id: uuid.UUID, values: dict[str, Any],
                 request_id: str | None, created_by: uuid.UUID | None) -> bool:
    """False when request_id was used already (the caller reads that list)."""
    result = await conn.execute(
        text("INSERT INTO crm.donor_lists (id, organization_id, create_request_id, created_by, name, description, "
             "type, filters) VALUES (:id, :org, :rid, :by, :name, :description, :type, CAST(:filters AS jsonb)) "
             "ON CONFLICT (organization_id, create_request_id) WHERE create_request_id IS NOT NULL DO NOTHING"),
        {"id": list_id, "org": org, "rid": request_id, "by": created_by, "name": values["name"],
         "description": values["description"], "type": values["type"], "filters": json.dumps(values["filters"])},
    )
    return result.rowcount == 1


async def id_by_request_id(conn: Connection, org: uuid.UUID, request_id: str) -> uuid.UUID | None:
    return await sql.id_by_request_id(conn, "crm.donor_lists", org, request_id)


async def get(conn: Connection, org: uuid.UUID, list_id: uuid.UUID, *, include_deleted: bool = False,
              for_update: bool = False) -> DonorList | None:
    return await sql.by_id(conn, f"SELECT {_COLUMNS} FROM crm.donor_lists l", org, list_id, _row, alias="l",
                           live=not include_deleted, for_update=for_update)


async def update(conn: Connection, org: uuid.UUID, list_id: uuid.UUID, values: dict[str, Any]) -> None:
    await sql.update_row(conn, "crm.donor_lists", org, list_id, {
        "name": values["name"], "description": values["description"], "filters": json.dumps(values["filters"])},
        casts={"filters": "jsonb"})


async def soft_delete(conn: Connection, org: uuid.UUID, list_id: uuid.UUID) -> None:
    await sql.soft_delete(conn, "crm.donor_lists", org, list_id)


async def page(conn: Connection, org: uuid.UUID, *, after: list | None, limit: int) -> list[DonorList]:
    """Newest first, keyset on (created_at, id); limit+1 to see if more follow."""
    where = Where("l.organization_id = :org", "l.deleted_at IS NULL", org=org, limit=limit)
    where.keyset("(l.created_at, l.id) <", after)
    return await sql.every(conn, f"SELECT {_COLUMNS} FROM crm.donor_lists l WHERE {where} "
                           "ORDER BY l.created_at DESC, l.id DESC LIMIT :limit", where.params, _row)


# -- members ---------------------------------------------------------------------------------------


async def existing_donors(conn: Connection, org: uuid.UUID, donor_ids: list[uuid.UUID], *,
                          live_only: bool) -> set[uuid.UUID]:
    """Which of donor_ids are the organization's donors (live ones only, when asked), share-locked
    so a donor does not disappear before the membership is written."""
    live = " AND deleted_at IS NULL" if live_only else ""
    rows = (await conn.execute(
        text(f"SELECT id FROM crm.donors WHERE organization_id = :org AND id = ANY(:ids){live} FOR KEY SHARE"),
        {"org": org, "ids": donor_ids},
    )).scalars().all()
    return set(rows)


async def add_members(conn: Connection, org: uuid.UUID, list_id: uuid.UUID, donor_ids: list[uuid.UUID],
                      added_by: uuid.UUID | None) -> int:
    """Insert the memberships not there yet (donor_count follows by trigger); how many were new."""
    result = await conn.execute(
        text("INSERT INTO crm.donor_list_members (organization_id, list_id, donor_id, added_by) "
             "SELECT :org, :list, d, :by FROM unnest(CAST(:ids AS uuid[])) AS d "
             "ON CONFLICT (list_id, donor_id) DO NOTHING"),
        {"org": org, "list": list_id, "ids": donor_ids, "by": added_by},
    )
    return result.rowcount


async def remove_members(conn: Connection, org: uuid.UUID, list_id: uuid.UUID,
                         donor_ids: list[uuid.UUID]) -> int:
    result = await conn.execute(
        text("DELETE FROM crm.donor_list_members WHERE organization_id = :org AND list_id = :list "
             "AND donor_id = ANY(:ids)"),
        {"org": org, "list": list_id, "ids": donor_ids},
    )
    return result.rowcount


def _filter_where(filters: dict[str, Any], params: dict[str, Any]) -> list[str]:
    """SQL conditions on crm.donors d for a dynamic list's stored filter."""
    where: list[str] = []
    if stages := filters.get("journey_stages"):
        where.append("d.journey_stage = ANY(CAST(:f_stages AS text[]))")
        params["f_stages"] = stages
    if tags := filters.get("tags"):
        where.append("d.tags @> CAST(:f_tags AS text[])")
        params["f_tags"] = tags
    for key, op in (("min_lifetime_giving", ">="), ("max_lifetime_giving", "<=")):
        if m := filters.get(key):
            where.append(f"COALESCE((SELECT g.lifetime_amount FROM crm.donor_giving g WHERE g.donor_id = d.id "
                         f"AND g.currency = :{key}_cur), 0) {op} :{key}_amt")
            params[f"{key}_cur"], params[f"{key}_amt"] = m["currency"], Decimal(m["amount"])
    for key, op in (("last_gift_before", "<"), ("last_gift_after", ">")):
        if value := filters.get(key):
            where.append(f"(SELECT max(g.last_gift_date) FROM crm.donor_giving g WHERE g.donor_id = d.id) {op} :{key}")
            params[key] = date.fromisoformat(value)
    for key, column in (("city", "address_city"), ("state", "address_state")):
        if value := filters.get(key):
            where.append(f"lower(d.{column}) = lower(:f_{key})")
            params[f"f_{key}"] = value
    if country := filters.get("country"):
        where.append("d.address_country = :f_country")
        params["f_country"] = country
    for i, cf in enumerate(filters.get("custom_fields") or []):
        where.append(f"d.custom_fields ->> CAST(:f_cf_key{i} AS text) = :f_cf_value{i}")
        params[f"f_cf_key{i}"], params[f"f_cf_value{i}"] = cf["key"], cf["value"]
    return where


def _members_source(lst: DonorList, params: dict[str, Any]) -> tuple[str, list[str]]:
    """FROM clause and conditions selecting the list's live donors."""
    where = ["d.organization_id = :org", "d.deleted_at IS NULL"]
    if lst.type == "dynamic":
        return "crm.donors d", where + _filter_where(lst.filters or {}, params)
    params["list"] = lst.id
    return ("crm.donor_list_members m JOIN crm.donors d ON d.organization_id = m.organization_id "
            "AND d.id = m.donor_id", [*where, "m.list_id = :list"])


async def count_matching(conn: Connection, org: uuid.UUID, lst: DonorList) -> int:
    params: dict[str, Any] = {"org": org}
    source, where = _members_source(lst, params)
    return (await conn.execute(text(f"SELECT count(*) FROM {source} WHERE {' AND '.join(where)}"),
                               params)).scalar()


async def member_page(conn: Connection, org: uuid.UUID, lst: DonorList, *, after: list | None,
                      limit: int) -> list[Donor]:
    """The list's live donors, newest first, keyset on (created_at, id); limit+1 to see if more follow."""
    params: dict[str, Any] = {"org": org, "limit": limit}
    source, conditions = _members_source(lst, params)
    where = Where(*conditions, **params).keyset("(d.created_at, d.id) <", after)
    return await sql.every(conn, f"SELECT {DONOR_COLUMNS}, {GIVING_COLUMN} FROM {source} WHERE {where} "
                           "ORDER BY d.created_at DESC, d.id DESC LIMIT :limit", where.params, to_donor)
