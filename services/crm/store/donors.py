"""crm's donor SQL. Every query runs under the unit of work's tenant (RLS); the explicit
organization_id filters keep the indexes usable and say what is meant."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from chassis.errors import AlreadyExists

_GIVING = (
    "COALESCE((SELECT json_agg(json_build_object('currency', g.currency, 'amount', g.lifetime_amount::text, "
    "'count', g.donation_count, 'first', g.first_gift_date, 'last', g.last_gift_date) ORDER BY g.currency) "
    "FROM crm.donor_giving g WHERE g.donor_id = d.id), '[]') AS giving"
)
_COLUMNS = (
    "d.id, d.organization_id, d.external_id, d.donor_type, d.first_name, d.last_name, d.email, d.phone, "
    "d.spouse_first_name, d.spouse_last_name, d.spouse_email, d.address_street, d.address_city, "
    "d.address_state, d.address_zip, d.address_country, d.journey_stage, d.ai_classification, "
    "d.last_contact_at, d.notes, d.tags, d.custom_fields, d.formal_salutation, d.informal_salutation, "
    "d.version, d.created_at, d.updated_at, d.deleted_at"
)
_WRITE_COLUMNS = (
    "external_id", "donor_type", "first_name", "last_name", "email", "phone", "spouse_first_name",
    "spouse_last_name", "spouse_email", "address_street", "address_city", "address_state", "address_zip",
    "address_country", "journey_stage", "ai_classification", "last_contact_at", "notes", "tags", "custom_fields",
    "formal_salutation", "informal_salutation",
)

_GET = text(f"SELECT {_COLUMNS}, {_GIVING} FROM crm.donors d "
            "WHERE d.organization_id = :org AND d.id = :id AND d.deleted_at IS NULL")
_GET_FOR_UPDATE = text(f"SELECT {_COLUMNS} FROM crm.donors d "
                       "WHERE d.organization_id = :org AND d.id = :id AND d.deleted_at IS NULL FOR UPDATE")


def _row(m: Any) -> dict[str, Any]:
    row = dict(m)
    if isinstance(row.get("custom_fields"), str):
        row["custom_fields"] = json.loads(row["custom_fields"])
    giving = row.get("giving")
    if isinstance(giving, str):
        row["giving"] = json.loads(giving)
    return row


def _params(values: dict[str, Any]) -> dict[str, Any]:
    p = {c: values.get(c) for c in _WRITE_COLUMNS}
    p["custom_fields"] = json.dumps(values.get("custom_fields") or {})
    p["tags"] = list(values.get("tags") or [])
    return p


async def insert(conn: AsyncConnection, org: uuid.UUID, donor_id: uuid.UUID, values: dict[str, Any],
                 request_id: str | None) -> dict[str, Any] | None:
    """Insert a donor; None when request_id was already used (the caller reads that one)."""
    cols = ", ".join(_WRITE_COLUMNS)
    vals = ", ".join(f":{c}" if c != "custom_fields" else "CAST(:custom_fields AS jsonb)" for c in _WRITE_COLUMNS)
    try:
        async with conn.begin_nested():
            row = (await conn.execute(
                text(f"INSERT INTO crm.donors AS d (id, organization_id, create_request_id, {cols}) "
                     f"VALUES (:id, :org, :rid, {vals}) "
                     "ON CONFLICT (organization_id, create_request_id) WHERE create_request_id IS NOT NULL "
                     f"DO NOTHING RETURNING {_COLUMNS}, '[]'::json AS giving"),
                {"id": donor_id, "org": org, "rid": request_id, **_params(values)},
            )).mappings().first()
    except IntegrityError as exc:
        raise _conflict(exc) from None
    return _row(row) if row else None


def _conflict(exc: IntegrityError) -> Exception:
    if "donors_external_id" in str(exc.orig):
        return AlreadyExists("another donor has this external_id", reason="EXTERNAL_ID_TAKEN")
    raise exc


async def by_request_id(conn: AsyncConnection, org: uuid.UUID, request_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(
        text(f"SELECT {_COLUMNS}, {_GIVING} FROM crm.donors d "
             "WHERE d.organization_id = :org AND d.create_request_id = :rid"),
        {"org": org, "rid": request_id},
    )).mappings().first()
    return _row(row) if row else None


async def get(conn: AsyncConnection, org: uuid.UUID, donor_id: uuid.UUID) -> dict[str, Any] | None:
    row = (await conn.execute(_GET, {"org": org, "id": donor_id})).mappings().first()
    return _row(row) if row else None


async def get_for_update(conn: AsyncConnection, org: uuid.UUID, donor_id: uuid.UUID) -> dict[str, Any] | None:
    row = (await conn.execute(_GET_FOR_UPDATE, {"org": org, "id": donor_id})).mappings().first()
    return _row(row) if row else None


async def update(conn: AsyncConnection, org: uuid.UUID, donor_id: uuid.UUID, values: dict[str, Any]) -> dict:
    sets = ", ".join(f"{c} = :{c}" if c != "custom_fields" else "custom_fields = CAST(:custom_fields AS jsonb)"
                     for c in _WRITE_COLUMNS)
    try:
        async with conn.begin_nested():
            row = (await conn.execute(
                text(f"UPDATE crm.donors AS d SET {sets}, version = version + 1, updated_at = now() "
                     f"WHERE d.organization_id = :org AND d.id = :id RETURNING {_COLUMNS}, {_GIVING}"),
                {"org": org, "id": donor_id, **_params(values)},
            )).mappings().one()
    except IntegrityError as exc:
        raise _conflict(exc) from None
    return _row(row)


async def soft_delete(conn: AsyncConnection, org: uuid.UUID, donor_id: uuid.UUID) -> dict:
    row = (await conn.execute(
        text("UPDATE crm.donors AS d SET deleted_at = now(), updated_at = now(), version = version + 1 "
             f"WHERE d.organization_id = :org AND d.id = :id RETURNING {_COLUMNS}, {_GIVING}"),
        {"org": org, "id": donor_id},
    )).mappings().one()
    return _row(row)


async def get_any_for_update(conn: AsyncConnection, org: uuid.UUID, donor_id: uuid.UUID) -> dict[str, Any] | None:
    """The donor even when deleted, with merged_into_id; locked."""
    row = (await conn.execute(
        text(f"SELECT {_COLUMNS}, d.merged_into_id FROM crm.donors d "
             "WHERE d.organization_id = :org AND d.id = :id FOR UPDATE"),
        {"org": org, "id": donor_id},
    )).mappings().first()
    return _row(row) if row else None


async def restore(conn: AsyncConnection, org: uuid.UUID, donor_id: uuid.UUID) -> dict:
    """Undo a soft delete; AlreadyExists when a live donor now holds its external_id."""
    try:
        async with conn.begin_nested():
            row = (await conn.execute(
                text("UPDATE crm.donors AS d SET deleted_at = NULL, updated_at = now(), version = version + 1 "
                     f"WHERE d.organization_id = :org AND d.id = :id RETURNING {_COLUMNS}, {_GIVING}"),
                {"org": org, "id": donor_id},
            )).mappings().one()
    except IntegrityError as exc:
        raise _conflict(exc) from None
    return _row(row)


ORDERINGS = {
    # order_by -> (sort column, direction)
    "create_time desc": ("created_at", "DESC"),
    "create_time": ("created_at", "ASC"),
    "last_name": ("last_name", "ASC"),
    "last_name desc": ("last_name", "DESC"),
}


def live_donors_where(org: uuid.UUID, *, journey_stage: str | None,
                      tag: str | None) -> tuple[list[str], dict[str, Any]]:
    """WHERE terms and parameters selecting an organization's live donors, optionally by stage
    and tag (ListDonors and ExportDonors filter alike)."""
    where = ["d.organization_id = :org", "d.deleted_at IS NULL"]
    params: dict[str, Any] = {"org": org}
    if journey_stage:
        where.append("d.journey_stage = :stage")
        params["stage"] = journey_stage
    if tag:
        where.append("d.tags @> ARRAY[CAST(:tag AS text)]")
        params["tag"] = tag
    return where, params


async def page(conn: AsyncConnection, org: uuid.UUID, *, order_by: str, after: list | None, limit: int,
               journey_stage: str | None, tag: str | None, email: str | None) -> list[dict[str, Any]]:
    """Keyset page: rows after (sort value, id) in the chosen order; limit+1 to see if more follow."""
    column, direction = ORDERINGS[order_by]
    where, params = live_donors_where(org, journey_stage=journey_stage, tag=tag)
    params["limit"] = limit
    if email:
        # email_key is lower(email), stored (migration 0014): a plain column's equality is what
        # row-level security lets its index (donors_email_key) serve; lower(d.email) was not.
        where.append("d.email_key = lower(:email)")
        params["email"] = email
    if after is not None:
        op = "<" if direction == "DESC" else ">"
        where.append(f"(d.{column}, d.id) {op} (:after_value, :after_id)")
        params["after_value"], params["after_id"] = after
    sql = (f"SELECT {_COLUMNS}, {_GIVING} FROM crm.donors d WHERE {' AND '.join(where)} "
           f"ORDER BY d.{column} {direction}, d.id {direction} LIMIT :limit")
    rows = (await conn.execute(text(sql), params)).mappings().all()
    return [_row(r) for r in rows]
