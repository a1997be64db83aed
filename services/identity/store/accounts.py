"""identity's SQL: users, organizations, memberships, refresh tokens (signing keys: store/keys.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from chassis.db import Connection
from chassis.errors import AlreadyExists
from chassis.sql import first
from services.identity.store import organizations
from services.identity.store.organizations import Organization


@dataclass(frozen=True, slots=True)
class User:
    """A user as sign-up shows them."""

    id: uuid.UUID
    email: str
    first_name: str
    last_name: str
    default_organization_id: uuid.UUID | None
    created_at: datetime


async def insert_organization(conn: Connection, org_id: uuid.UUID, name: str, slug: str,
                              created_by: uuid.UUID) -> Organization:
    try:
        async with conn.begin_nested():
            row = (await conn.execute(
                text("INSERT INTO identity.organizations AS o (id, name, slug, created_by) "
                     f"VALUES (:id, :name, :slug, :by) RETURNING {organizations.COLUMNS}"),
                {"id": org_id, "name": name, "slug": slug, "by": created_by},
            )).mappings().one()
    except IntegrityError:
        raise AlreadyExists(f"organization slug {slug!r} is taken", reason="SLUG_TAKEN") from None
    return organizations.to_organization(row)


async def insert_user(conn: Connection, user_id: uuid.UUID, email: str, password_hash: str,
                      first_name: str, last_name: str, default_org: uuid.UUID | None,
                      request_id: str | None) -> User:
    try:
        async with conn.begin_nested():
            row = (await conn.execute(
                text("INSERT INTO identity.users (id, email, password_hash, first_name, last_name, "
                     "default_organization_id, signup_request_id) "
                     "VALUES (:id, :email, :ph, :fn, :ln, :org, :rid) "
                     "RETURNING id, email, first_name, last_name, default_organization_id, created_at"),
                {"id": user_id, "email": email, "ph": password_hash, "fn": first_name, "ln": last_name,
                 "org": default_org, "rid": request_id},
            )).mappings().one()
    except IntegrityError:
        raise AlreadyExists("an account with this email already exists", reason="EMAIL_TAKEN") from None
    return User(**dict(row))


_USER = ("SELECT id, email, password_hash, first_name, last_name, default_organization_id, is_active, created_at "
         "FROM identity.users WHERE ")


async def user_by_email(conn: Connection, email: str) -> dict[str, Any] | None:
    return await first(conn, _USER + "lower(email) = lower(:e) AND deleted_at IS NULL", {"e": email})


async def user_by_signup_request(conn: Connection, request_id: str) -> dict[str, Any] | None:
    return await first(conn, _USER + "signup_request_id = :r", {"r": request_id})


async def set_default_organization(conn: Connection, user_id: uuid.UUID, org_id: uuid.UUID) -> None:
    await conn.execute(
        text("UPDATE identity.users SET default_organization_id = :o, updated_at = now() WHERE id = :u"),
        {"o": org_id, "u": user_id},
    )


async def insert_membership(conn: Connection, user_id: uuid.UUID, org_id: uuid.UUID, role: str) -> None:
    await conn.execute(
        text("INSERT INTO identity.user_organizations (user_id, organization_id, role, status, joined_at) "
             "VALUES (:u, :o, :r, 'active', now())"),
        {"u": user_id, "o": org_id, "r": role},
    )


async def active_membership_role(conn: Connection, user_id: uuid.UUID, org_id: uuid.UUID) -> str | None:
    """The role of an active membership (the tenant must be org_id: RLS)."""
    return (await conn.execute(
        text("SELECT role FROM identity.user_organizations "
             "WHERE user_id = :u AND organization_id = :o AND status = 'active'"),
        {"u": user_id, "o": org_id},
    )).scalar()


async def insert_refresh_token(conn: Connection, org_id: uuid.UUID, user_id: uuid.UUID,
                               family_id: uuid.UUID, token_hash: bytes, expires_at: datetime, *,
                               auth_time: float | None = None) -> None:
    await conn.execute(
        text("INSERT INTO identity.refresh_tokens (organization_id, user_id, family_id, token_hash, expires_at, "
             "auth_time) VALUES (:o, :u, :f, :h, :e, to_timestamp(:a))"),
        {"o": org_id, "u": user_id, "f": family_id, "h": token_hash, "e": expires_at, "a": auth_time},
    )


async def refresh_token_for_update(conn: Connection, token_hash: bytes) -> dict[str, Any] | None:
    return await first(
        conn, "SELECT id, organization_id, user_id, family_id, expires_at, used_at, revoked_at, "
        "expires_at <= now() AS expired, extract(epoch FROM auth_time)::float8 AS auth_time "
        "FROM identity.refresh_tokens WHERE token_hash = :h FOR UPDATE",
        {"h": token_hash})


async def mark_refresh_token_used(conn: Connection, token_id: uuid.UUID) -> None:
    await conn.execute(
        text("UPDATE identity.refresh_tokens SET used_at = now(), updated_at = now() WHERE id = :id"),
        {"id": token_id},
    )


async def revoke_family(conn: Connection, family_id: uuid.UUID) -> int:
    result = await conn.execute(
        text("UPDATE identity.refresh_tokens SET revoked_at = now(), updated_at = now() "
             "WHERE family_id = :f AND revoked_at IS NULL"),
        {"f": family_id},
    )
    return result.rowcount
