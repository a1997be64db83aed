"""crm's client and contact SQL."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy.exc import IntegrityError

from chassis import sql
from chassis.db import Connection
from chassis.errors import AlreadyExists, FailedPrecondition
from chassis.sql import Where

CLIENT_COLUMNS = (
    "name", "company_name", "client_type", "industry", "client_number", "email", "phone", "website", "address",
    "registration_number", "fiscal_year_end_month", "status", "acquisition_source", "referral_source",
    "assigned_manager", "communication_preferences", "service_preferences", "billing_address", "payment_terms",
    "credit_limit", "credit_limit_currency",
)
_CLIENT_JSON = ("address", "communication_preferences", "service_preferences", "billing_address")
_CLIENT_CASTS = {c: "jsonb" for c in _CLIENT_JSON} | {"assigned_manager": "uuid"}
_CLIENT_SELECT = ("SELECT id, organization_id, tax_id_last4, created_by, version, created_at, updated_at, deleted_at, "
                  f"{', '.join(CLIENT_COLUMNS)} FROM crm.clients")
CONTACT_COLUMNS = (
    "client_id", "first_name", "last_name", "job_title", "department", "email", "phone", "mobile", "is_primary",
    "can_authorize", "receives_communications", "notes", "tags",
)
_CONTACT_CASTS = {"client_id": "uuid"}
_CONTACT_SELECT = ("SELECT id, organization_id, created_by, merged_into, version, created_at, updated_at, deleted_at, "
                   f"{', '.join(CONTACT_COLUMNS)} FROM crm.contacts")


class Row(dict):
    """A stored row by column name; `.version` too, as chassis.resource.current reads it."""

    @property
    def version(self) -> int:
        return self["version"]


def _client(row: Any) -> dict[str, Any]:
    d = Row(row)
    for c in _CLIENT_JSON:
        d[c] = json.loads(d[c]) if isinstance(d[c], str) else d[c]
    return d


def _params(values: dict[str, Any], columns: tuple[str, ...], json_columns: tuple[str, ...] = ()) -> dict[str, Any]:
    out = {c: values.get(c) for c in columns}
    for c in json_columns:
        out[c] = None if out[c] is None else json.dumps(out[c])
    for c in ("assigned_manager", "client_id"):
        if c in out and out[c] is not None:
            out[c] = uuid.UUID(str(out[c]))
    return out


def _client_number_taken(exc: IntegrityError, number: str | None) -> None:
    if "clients_number" in str(exc):
        raise AlreadyExists(f"client number {number!r} is used by another client", reason="CLIENT_NUMBER_TAKEN",
                            metadata={"field": "client.client_number"}) from None
    raise exc


async def insert_client(conn: Connection, org: uuid.UUID, client_id: uuid.UUID, values: dict[str, Any],
                        tax_sealed: str | None, tax_last4: str | None, created_by: uuid.UUID | None,
                        request_id: str | None) -> bool:
    cols = ", ".join(CLIENT_COLUMNS)
    vals = ", ".join(f"CAST(:{c} AS {_CLIENT_CASTS[c]})" if c in _CLIENT_CASTS else f":{c}" for c in CLIENT_COLUMNS)
    try:
        async with conn.begin_nested():
            result = await conn.execute(
                f"INSERT INTO crm.clients (id, organization_id, create_request_id, created_by, tax_id_sealed, "
                f"tax_id_last4, {cols}) VALUES (:id, :org, :rid, :created_by, :sealed, :last4, {vals}) "
                "ON CONFLICT (organization_id, create_request_id) WHERE create_request_id IS NOT NULL DO NOTHING",
                {"id": client_id, "org": org, "rid": request_id, "created_by": created_by, "sealed": tax_sealed,
                 "last4": tax_last4, **_params(values, CLIENT_COLUMNS, _CLIENT_JSON)})
    except IntegrityError as exc:
        _client_number_taken(exc, values.get("client_number"))
    return result.rowcount == 1


async def client_by_request_id(conn: Connection, org: uuid.UUID, request_id: str) -> uuid.UUID | None:
    return await sql.id_by_request_id(conn, "crm.clients", org, request_id)


async def get_client(conn: Connection, org: uuid.UUID, client_id: uuid.UUID, *,
                     for_update: bool = False) -> dict[str, Any] | None:
    return await sql.by_id(conn, _CLIENT_SELECT, org, client_id, _client, live=True, for_update=for_update)


async def client_is_live(conn: Connection, org: uuid.UUID, client_id: uuid.UUID) -> bool:
    return await sql.exists(conn, "crm.clients", org, client_id, live=True, lock="FOR SHARE")


async def update_client(conn: Connection, org: uuid.UUID, client_id: uuid.UUID, values: dict[str, Any],
                        tax: tuple[str | None, str | None] | None) -> None:
    params = _params(values, CLIENT_COLUMNS, _CLIENT_JSON)
    if tax is not None:
        params["tax_id_sealed"], params["tax_id_last4"] = tax
    try:
        async with conn.begin_nested():
            await sql.update_row(conn, "crm.clients", org, client_id, params, casts=_CLIENT_CASTS)
    except IntegrityError as exc:
        _client_number_taken(exc, values.get("client_number"))


async def sealed_tax_id(conn: Connection, org: uuid.UUID, client_id: uuid.UUID) -> str | None:
    return (await conn.execute("SELECT tax_id_sealed FROM crm.clients WHERE organization_id = :org AND id = :id",
                               {"org": org, "id": client_id})).scalar()


async def delete_client(conn: Connection, org: uuid.UUID, client_id: uuid.UUID) -> None:
    await sql.soft_delete(conn, "crm.clients", org, client_id)


async def has_live_contacts(conn: Connection, org: uuid.UUID, client_id: uuid.UUID) -> bool:
    return bool((await conn.execute(
        "SELECT 1 FROM crm.contacts WHERE organization_id = :org AND client_id = :id AND deleted_at IS NULL LIMIT 1",
        {"org": org, "id": client_id})).scalar())


async def page_clients(conn: Connection, org: uuid.UUID, *, filters: dict[str, Any], words: list[str],
                       after: list | None, limit: int) -> list[dict[str, Any]]:
    where = Where("organization_id = :org", "deleted_at IS NULL", org=org, limit=limit)
    where.filters("{c} = :{c}", ((c, filters.get(c)) for c in ("status", "client_type", "assigned_manager")))
    for i, word in enumerate(words):
        where.add(f"lower(concat_ws(' ', name, company_name, email, client_number)) LIKE :w{i}",
                  **{f"w{i}": f"%{_like(word)}%"})
    where.keyset("(lower(name), id) >", after)
    return await sql.every(conn, f"{_CLIENT_SELECT} WHERE {where} ORDER BY lower(name), id LIMIT :limit",
                           where.params, _client)


def _like(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# -- contacts ----------------------------------------------------------------------------------


def _primary_taken(exc: IntegrityError) -> None:
    if "contacts_one_primary" in str(exc):
        raise FailedPrecondition("the client already has a primary contact; unset it first",
                                 reason="PRIMARY_CONTACT_EXISTS") from None
    raise exc


async def insert_contact(conn: Connection, org: uuid.UUID, contact_id: uuid.UUID, values: dict[str, Any],
                         created_by: uuid.UUID | None, request_id: str | None) -> bool:
    cols = ", ".join(CONTACT_COLUMNS)
    vals = ", ".join(f":{c}" for c in CONTACT_COLUMNS)
    try:
        async with conn.begin_nested():
            result = await conn.execute(
                f"INSERT INTO crm.contacts (id, organization_id, create_request_id, created_by, {cols}) "
                f"VALUES (:id, :org, :rid, :created_by, {vals}) "
                "ON CONFLICT (organization_id, create_request_id) WHERE create_request_id IS NOT NULL DO NOTHING",
                {"id": contact_id, "org": org, "rid": request_id, "created_by": created_by,
                 **_params(values, CONTACT_COLUMNS)})
    except IntegrityError as exc:
        _primary_taken(exc)
    return result.rowcount == 1


async def contact_by_request_id(conn: Connection, org: uuid.UUID, request_id: str) -> uuid.UUID | None:
    return await sql.id_by_request_id(conn, "crm.contacts", org, request_id)


async def get_contact(conn: Connection, org: uuid.UUID, contact_id: uuid.UUID, *,
                      for_update: bool = False) -> dict[str, Any] | None:
    return await sql.by_id(conn, _CONTACT_SELECT, org, contact_id, Row, live=True, for_update=for_update)


async def contact_is_live(conn: Connection, org: uuid.UUID, contact_id: uuid.UUID) -> bool:
    return await sql.exists(conn, "crm.contacts", org, contact_id, live=True, lock="FOR SHARE")


async def update_contact(conn: Connection, org: uuid.UUID, contact_id: uuid.UUID, values: dict[str, Any]) -> None:
    try:
        async with conn.begin_nested():
            await sql.update_row(conn, "crm.contacts", org, contact_id, _params(values, CONTACT_COLUMNS),
                                 casts=_CONTACT_CASTS)
    except IntegrityError as exc:
        _primary_taken(exc)


async def delete_contact(conn: Connection, org: uuid.UUID, contact_id: uuid.UUID,
                         merged_into: uuid.UUID | None = None) -> None:
    await conn.execute(
        "UPDATE crm.contacts SET deleted_at = now(), updated_at = now(), version = version + 1, is_primary = false, "
        "merged_into = :into WHERE organization_id = :org AND id = :id",
        {"org": org, "id": contact_id, "into": merged_into})


async def page_contacts(conn: Connection, org: uuid.UUID, *, client_id: uuid.UUID | None, tag: str | None,
                        words: list[str], after: list | None, limit: int) -> list[dict[str, Any]]:
    where = Where("organization_id = :org", "deleted_at IS NULL", org=org, limit=limit)
    where.filter("client_id = :client_id", client_id=client_id)
    where.filter(":tag = ANY(tags)", tag=tag)
    for i, word in enumerate(words):
        where.add(f"lower(concat_ws(' ', first_name, last_name, email, job_title)) LIKE :w{i}",
                  **{f"w{i}": f"%{_like(word)}%"})
    where.keyset("(lower(last_name), lower(first_name), id) >", after)
    return await sql.every(
        conn, f"{_CONTACT_SELECT} WHERE {where} ORDER BY lower(last_name), lower(first_name), id LIMIT :limit",
        where.params, Row)
