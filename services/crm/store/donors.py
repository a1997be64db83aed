"""crm's donor SQL. Every query runs under the unit of work's tenant (RLS); the explicit
organization_id filters keep the indexes usable and say what is meant."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from chassis import sql
from chassis.db import Connection
from chassis.errors import AlreadyExists
from services.crm.domain import donors as rules


class GivingTotal(NamedTuple):
    """A donor's giving in one currency, as crm.donor_giving holds it (amount as exact text,
    dates as ISO text or None)."""

    currency: str
    amount: str
    count: int
    first: str | None
    last: str | None
    soft: str = "0"  # soft credit, as exact text
    soft_count: int = 0


@dataclass(slots=True)
class Donor:
    """A stored donor. `giving` is read with the donor where the query asks for it (None when
    not); `merged_into_id` where a merge needs it; `score` on search hits."""

    id: uuid.UUID
    organization_id: uuid.UUID
    external_id: str | None
    donor_type: str
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    spouse_first_name: str | None
    spouse_last_name: str | None
    spouse_email: str | None
    address_street: str | None
    address_city: str | None
    address_state: str | None
    address_zip: str | None
    address_country: str
    journey_stage: str | None
    ai_classification: str | None
    last_contact_at: datetime | None
    notes: str | None
    tags: list[str]
    custom_fields: dict[str, Any]
    formal_salutation: str | None  # the donor's own; None: derived from the names
    informal_salutation: str | None
    version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    email_status: str = "ok"  # ok, bounced, complained, unsubscribed: comms' word on the current address
    email_status_at: datetime | None = None
    giving: list[GivingTotal] | None = None
    merged_into_id: uuid.UUID | None = None
    score: float | None = None

    def salutations(self) -> tuple[str, str]:
        """The formal and informal salutation: the donor's own, else derived from the names."""
        return rules.salutations_of(self)

# Per currency, hard giving (crm.donor_giving) beside soft (crm.donor_soft_giving): a currency
# appears when either has it.
GIVING_COLUMN = (
    "COALESCE((SELECT json_agg(json_build_object('currency', c.currency, "
    "'amount', COALESCE(g.lifetime_amount, 0)::text, 'count', COALESCE(g.donation_count, 0), "
    "'first', g.first_gift_date, 'last', g.last_gift_date, 'soft', COALESCE(s.soft_amount, 0)::text, "
    "'soft_count', COALESCE(s.soft_count, 0)) ORDER BY c.currency) "
    "FROM (SELECT currency FROM crm.donor_giving WHERE donor_id = d.id "
    "UNION SELECT currency FROM crm.donor_soft_giving WHERE donor_id = d.id) c "
    "LEFT JOIN crm.donor_giving g ON g.donor_id = d.id AND g.currency = c.currency "
    "LEFT JOIN crm.donor_soft_giving s ON s.donor_id = d.id AND s.currency = c.currency), '[]') AS giving"
)
DONOR_COLUMNS = (
    "d.id, d.organization_id, d.external_id, d.donor_type, d.first_name, d.last_name, d.email, d.phone, "
    "d.spouse_first_name, d.spouse_last_name, d.spouse_email, d.address_street, d.address_city, "
    "d.address_state, d.address_zip, d.address_country, d.journey_stage, d.ai_classification, "
    "d.last_contact_at, d.notes, d.tags, d.custom_fields, d.formal_salutation, d.informal_salutation, "
    "d.version, d.created_at, d.updated_at, d.deleted_at, d.email_status, d.email_status_at"
)
WRITE_COLUMNS = (
    "external_id", "donor_type", "first_name", "last_name", "email", "phone", "spouse_first_name",
    "spouse_last_name", "spouse_email", "address_street", "address_city", "address_state", "address_zip",
    "address_country", "journey_stage", "ai_classification", "last_contact_at", "notes", "tags", "custom_fields",
    "formal_salutation", "informal_salutation",
)
_CASTS = {"custom_fields": "jsonb"}

_GET = text(f"SELECT {DONOR_COLUMNS}, {GIVING_COLUMN} FROM crm.donors d "
            "WHERE d.organization_id = :org AND d.id = :id AND d.deleted_at IS NULL")
_GET_FOR_UPDATE = text(f"SELECT {DONOR_COLUMNS} FROM crm.donors d "
                       "WHERE d.organization_id = :org AND d.id = :id AND d.deleted_at IS NULL FOR UPDATE")


# A row's DONOR_COLUMNS are a Donor's first fields, in order: it is built from them by position
# (keyword arguments cost four times as much, on every donor of every page).
_STORED = len(DONOR_COLUMNS.split(", "))
assert [c.removeprefix("d.") for c in DONOR_COLUMNS.split(", ")] == [f.name for f in fields(Donor)][:_STORED]


def to_donor(m: Any) -> Donor:
    """A row of DONOR_COLUMNS, then any of giving, merged_into_id and score (by name)."""
    values = tuple(m)
    d = Donor(*values[:_STORED])
    if len(values) > _STORED:
        for name, value in zip(list(m.keys())[_STORED:], values[_STORED:], strict=True):
            setattr(d, name, value)
        if isinstance(d.giving, str):
            d.giving = [GivingTotal(g["currency"], g["amount"], g["count"], g["first"], g["last"],
                                    g.get("soft", "0"), g.get("soft_count", 0))
                        for g in json.loads(d.giving)]
    # Inline, not chassis.sql.json_object: this runs for every donor of every page.
    if isinstance(d.custom_fields, str):
        d.custom_fields = json.loads(d.custom_fields)
    elif d.custom_fields is None:
        d.custom_fields = {}
    return d


def _params(values: dict[str, Any]) -> dict[str, Any]:
    p = {c: values.get(c) for c in WRITE_COLUMNS}
    p["custom_fields"] = json.dumps(values.get("custom_fields") or {})
    p["tags"] = list(values.get("tags") or [])
    return p


async def insert(conn: Connection, org: uuid.UUID, donor_id: uuid.UUID, values: dict[str, Any],
                 request_id: str | None) -> Donor | None:
    """Insert a donor; None when request_id was already used (the caller reads that one)."""
    cols = ", ".join(WRITE_COLUMNS)
    vals = ", ".join(f":{c}" if c not in _CASTS else f"CAST(:{c} AS {_CASTS[c]})" for c in WRITE_COLUMNS)
    try:
        async with conn.begin_nested():
            row = (await conn.execute(
                text(f"INSERT INTO crm.donors AS d (id, organization_id, create_request_id, {cols}) "
                     f"VALUES (:id, :org, :rid, {vals}) "
                     "ON CONFLICT (organization_id, create_request_id) WHERE create_request_id IS NOT NULL "
                     f"DO NOTHING RETURNING {DONOR_COLUMNS}, '[]'::json AS giving"),
                {"id": donor_id, "org": org, "rid": request_id, **_params(values)},
            )).mappings().first()
    except IntegrityError as exc:
        raise _conflict(exc) from None
    return to_donor(row) if row else None


def _conflict(exc: IntegrityError) -> Exception:
    if "donors_external_id" in str(exc.orig):
        return AlreadyExists("another donor has this external_id", reason="EXTERNAL_ID_TAKEN")
    raise exc


async def by_request_id(conn: Connection, org: uuid.UUID, request_id: str) -> Donor | None:
    return await sql.first(conn, f"SELECT {DONOR_COLUMNS}, {GIVING_COLUMN} FROM crm.donors d "
                           "WHERE d.organization_id = :org AND d.create_request_id = :rid",
                           {"org": org, "rid": request_id}, to_donor)


async def get(conn: Connection, org: uuid.UUID, donor_id: uuid.UUID) -> Donor | None:
    row = (await conn.execute(_GET, {"org": org, "id": donor_id})).mappings().first()
    return to_donor(row) if row else None


async def get_for_update(conn: Connection, org: uuid.UUID, donor_id: uuid.UUID) -> Donor | None:
    row = (await conn.execute(_GET_FOR_UPDATE, {"org": org, "id": donor_id})).mappings().first()
    return to_donor(row) if row else None


async def update(conn: Connection, org: uuid.UUID, donor_id: uuid.UUID, values: dict[str, Any]) -> Donor:
    try:
        async with conn.begin_nested():
            row = await sql.update_row(conn, "crm.donors AS d", org, donor_id, _params(values), casts=_CASTS,
                                       returning=f"{DONOR_COLUMNS}, {GIVING_COLUMN}")
    except IntegrityError as exc:
        raise _conflict(exc) from None
    return to_donor(row)


async def soft_delete(conn: Connection, org: uuid.UUID, donor_id: uuid.UUID) -> Donor:
    return to_donor(await sql.soft_delete(conn, "crm.donors AS d", org, donor_id,
                                          returning=f"{DONOR_COLUMNS}, {GIVING_COLUMN}"))


async def get_any_for_update(conn: Connection, org: uuid.UUID, donor_id: uuid.UUID) -> Donor | None:
    """The donor even when deleted, with merged_into_id; locked."""
    row = (await conn.execute(
        text(f"SELECT {DONOR_COLUMNS}, d.merged_into_id FROM crm.donors d "
             "WHERE d.organization_id = :org AND d.id = :id FOR UPDATE"),
        {"org": org, "id": donor_id},
    )).mappings().first()
    return to_donor(row) if row else None


async def restore(conn: Connection, org: uuid.UUID, donor_id: uuid.UUID) -> Donor:
    """Undo a soft delete; AlreadyExists when a live donor now holds its external_id."""
    try:
        async with conn.begin_nested():
            row = (await conn.execute(
                text("UPDATE crm.donors AS d SET deleted_at = NULL, updated_at = now(), version = version + 1 "
                     f"WHERE d.organization_id = :org AND d.id = :id RETURNING {DONOR_COLUMNS}, {GIVING_COLUMN}"),
                {"org": org, "id": donor_id},
            )).mappings().one()
    except IntegrityError as exc:
        raise _conflict(exc) from None
    return to_donor(row)


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


async def page(conn: Connection, org: uuid.UUID, *, order_by: str, after: list | None, limit: int,
               journey_stage: str | None, tag: str | None, email: str | None) -> list[Donor]:
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
    sql = (f"SELECT {DONOR_COLUMNS}, {GIVING_COLUMN} FROM crm.donors d WHERE {' AND '.join(where)} "
           f"ORDER BY d.{column} {direction}, d.id {direction} LIMIT :limit")
    rows = (await conn.execute(text(sql), params)).mappings().all()
    return [to_donor(r) for r in rows]


async def record_contact(conn: Connection, org: uuid.UUID, donor_id: uuid.UUID, when: datetime) -> bool:
    """The donor's last contact moves forward to `when` (never back); the version (etag) stays:
    it is not an edit of the donor."""
    result = await conn.execute(
        "UPDATE crm.donors SET last_contact_at = :when WHERE organization_id = :org AND id = :id "
        "AND (last_contact_at IS NULL OR last_contact_at < :when)", {"org": org, "id": donor_id, "when": when})
    return result.rowcount == 1


async def record_email_status(conn: Connection, org: uuid.UUID, donor_id: uuid.UUID, address: str, status: str,
                              when: datetime) -> bool:
    """The donor's email status, when `address` is still the donor's email and nothing later was
    recorded (an older event arriving late changes nothing); the version (etag) stays."""
    result = await conn.execute(
        "UPDATE crm.donors SET email_status = :status, email_status_at = :when WHERE organization_id = :org "
        "AND id = :id AND deleted_at IS NULL AND email_key = lower(:address) "
        "AND (email_status_at IS NULL OR email_status_at <= :when)",
        {"org": org, "id": donor_id, "address": address, "status": status, "when": when})
    return result.rowcount == 1
