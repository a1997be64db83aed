"""identity's SQL for an organization's custom roles (system roles live in domain/roles.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from chassis.db import Connection
from chassis.errors import AlreadyExists
from chassis.sql import by_id, by_name, first, update_row


@dataclass(frozen=True, slots=True)
class Role:
    """A role as the API shows it: a custom role (id, version) or a system one (named, no version)."""

    id: uuid.UUID | str
    organization_id: uuid.UUID | None
    name: str
    description: str | None
    permissions: list[str]
    version: int | None
    created_at: datetime | None
    updated_at: datetime | None
    system: bool = False


_role = by_name(Role)


_ROLE_COLUMNS = "id, organization_id, name, description, permissions, version, created_at, updated_at"


async def list_roles(conn: Connection, org_id: uuid.UUID) -> list[Role]:
    rows = (await conn.execute(
        text(f"SELECT {_ROLE_COLUMNS} FROM identity.roles WHERE organization_id = :o ORDER BY lower(name), id"),
        {"o": org_id},
    )).mappings().all()
    return [Role(**dict(r)) for r in rows]


async def get_role(conn: Connection, org_id: uuid.UUID, role_id: uuid.UUID, *, for_update: bool = False
                   ) -> Role | None:
    return await by_id(conn, f"SELECT {_ROLE_COLUMNS} FROM identity.roles", org_id, role_id, _role,
                       for_update=for_update)


async def role_by_request(conn: Connection, org_id: uuid.UUID, request_id: str) -> Role | None:
    return await first(
        conn, f"SELECT {_ROLE_COLUMNS} FROM identity.roles WHERE organization_id = :o AND request_id = :r",
        {"o": org_id, "r": request_id}, _role)


def _name_taken(name: str) -> AlreadyExists:
    return AlreadyExists(f"a role named {name!r} already exists", reason="ROLE_NAME_TAKEN")


async def insert_role(conn: Connection, org_id: uuid.UUID, role_id: uuid.UUID, name: str, description: str,
                      permissions: list[str], request_id: str | None) -> Role | None:
    """None when request_id was used before (AIP-155: the caller returns the first result)."""
    try:
        async with conn.begin_nested():
            row = (await conn.execute(
                text("INSERT INTO identity.roles (id, organization_id, name, description, permissions, request_id) "
                     "VALUES (:id, :o, :n, :d, :p, :rid) "
                     "ON CONFLICT (organization_id, request_id) WHERE request_id IS NOT NULL DO NOTHING "
                     f"RETURNING {_ROLE_COLUMNS}"),
                {"id": role_id, "o": org_id, "n": name, "d": description, "p": permissions, "rid": request_id},
            )).mappings().first()
    except IntegrityError:
        raise _name_taken(name) from None
    return Role(**dict(row)) if row else None


async def update_role(conn: Connection, org_id: uuid.UUID, role_id: uuid.UUID, name: str, description: str,
                      permissions: list[str]) -> Role:
    try:
        async with conn.begin_nested():
            row = await update_row(conn, "identity.roles", org_id, role_id, {
                "name": name, "description": description, "permissions": permissions}, returning=_ROLE_COLUMNS)
    except IntegrityError:
        raise _name_taken(name) from None
    return Role(**dict(row))


async def delete_role(conn: Connection, org_id: uuid.UUID, role_id: uuid.UUID) -> None:
    # Settled invitations keep their history without the role; pending ones were refused before.
    await conn.execute(
        text("UPDATE identity.invitations SET custom_role_id = NULL, updated_at = now() "
             "WHERE organization_id = :o AND custom_role_id = :id"),
        {"o": org_id, "id": role_id},
    )
    await conn.execute(text("DELETE FROM identity.roles WHERE organization_id = :o AND id = :id"),
                       {"o": org_id, "id": role_id})
