"""identity's SQL for memberships and membership revocations (custom roles: store/roles.py,
invitations: store/invitations.py).

Every query runs under the unit of work's tenant (row-level security) and filters on the
organization as well.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from chassis.db import Connection
from chassis.errors import AlreadyExists
from chassis.revocation import MEMBERSHIP
from chassis.sql import first
from services.identity.domain import members as rules
from services.identity.domain import roles
from services.identity.store import revocations


def _json(value: Any) -> dict:
    if value is None:
        return {}
    if isinstance(value, str | bytes):
        return json.loads(value)
    return dict(value)


class HoldsRole:
    """A row that holds a role: a system role by name, or a custom role by id."""

    role: str
    custom_role_id: uuid.UUID | None

    @property
    def role_name(self) -> str:
        """The role as the API names it (a custom role by its id; "" once that role was deleted)."""
        if self.role == roles.CUSTOM:
            return str(self.custom_role_id) if self.custom_role_id else ""
        return self.role


@dataclass(frozen=True, slots=True)
class Member(HoldsRole):
    """A membership of the organization, with the member's name and email."""

    user_id: uuid.UUID
    email: str
    first_name: str | None
    last_name: str | None
    role: str
    custom_role_id: uuid.UUID | None
    status: str
    permissions_override: dict
    joined_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int

    @property
    def overrides(self) -> rules.Overrides:
        return rules.Overrides.from_json(self.permissions_override)

    def membership(self) -> rules.Membership:
        return rules.Membership(user_id=self.user_id, role=rules.RoleRef(self.role, self.custom_role_id),
                                status=self.status, overrides=self.overrides)


@dataclass(frozen=True, slots=True)
class ActiveMember(HoldsRole):
    user_id: uuid.UUID
    role: str
    custom_role_id: uuid.UUID | None


def _member(row: Any) -> Member:
    out = dict(row)
    out["permissions_override"] = _json(out.get("permissions_override"))
    return Member(**out)


def _grants_row(row: Any) -> dict[str, Any]:
    out = dict(row)
    out["permissions_override"] = _json(out.get("permissions_override"))
    return out


_MEMBER_COLUMNS = (
    "m.user_id, u.email, u.first_name, u.last_name, m.role, m.custom_role_id, m.status, "
    "m.permissions_override, m.joined_at, m.created_at, m.updated_at, m.version "
)

# -- memberships --------------------------------------------------------------------------


async def lock_organization(conn: Connection, org_id: uuid.UUID) -> None:
    """Serializes membership changes of one organization (the last-owner rule counts owners).
    FOR NO KEY UPDATE: it does not block inserts that reference the organization."""
    await conn.execute(text("SELECT 1 FROM identity.organizations WHERE id = :o FOR NO KEY UPDATE"), {"o": org_id})


async def page_members(conn: Connection, org_id: uuid.UUID, after: tuple[datetime, uuid.UUID] | None,
                       limit: int) -> list[Member]:
    sql = (f"SELECT {_MEMBER_COLUMNS}FROM identity.user_organizations m JOIN identity.users u ON u.id = m.user_id "
           "WHERE m.organization_id = :o ")
    params: dict[str, Any] = {"o": org_id, "limit": limit}
    if after is not None:
        sql += "AND (m.created_at, m.user_id) > (CAST(:after_t AS timestamptz), CAST(:after_id AS uuid)) "
        params.update(after_t=after[0], after_id=after[1])
    sql += "ORDER BY m.created_at, m.user_id LIMIT :limit"
    rows = (await conn.execute(text(sql), params)).mappings().all()
    return [_member(r) for r in rows]


async def get_member(conn: Connection, org_id: uuid.UUID, user_id: uuid.UUID, *, for_update: bool = False
                     ) -> Member | None:
    sql = (f"SELECT {_MEMBER_COLUMNS}FROM identity.user_organizations m JOIN identity.users u ON u.id = m.user_id "
           "WHERE m.organization_id = :o AND m.user_id = :u")
    if for_update:
        sql += " FOR UPDATE OF m"
    return await first(conn, sql, {"o": org_id, "u": user_id}, _member)


async def membership_for_tokens(conn: Connection, org_id: uuid.UUID, user_id: uuid.UUID) -> dict[str, Any] | None:
    """Role, custom role permissions and overrides, for an access token. FOR SHARE: a change
    of the membership waits for the token being issued, and its not_before comes after it."""
    return await first(
        conn, "SELECT m.role, m.custom_role_id, m.status, m.permissions_override, r.permissions AS role_permissions "
        "FROM identity.user_organizations m LEFT JOIN identity.roles r "
        "ON r.organization_id = m.organization_id AND r.id = m.custom_role_id "
        "WHERE m.organization_id = :o AND m.user_id = :u FOR SHARE OF m",
        {"o": org_id, "u": user_id}, _grants_row)


async def count_active_owners(conn: Connection, org_id: uuid.UUID) -> int:
    return (await conn.execute(
        text("SELECT count(*) FROM identity.user_organizations "
             "WHERE organization_id = :o AND role = 'owner' AND status = 'active'"),
        {"o": org_id},
    )).scalar() or 0


async def update_member_role(conn: Connection, org_id: uuid.UUID, user_id: uuid.UUID, role: str,
                             custom_role_id: uuid.UUID | None, overrides: dict) -> None:
    await conn.execute(
        text("UPDATE identity.user_organizations SET role = :r, custom_role_id = :cr, "
             "permissions_override = CAST(:po AS jsonb), version = version + 1, updated_at = now() "
             "WHERE organization_id = :o AND user_id = :u"),
        {"o": org_id, "u": user_id, "r": role, "cr": custom_role_id, "po": json.dumps(overrides)},
    )


async def set_member_status(conn: Connection, org_id: uuid.UUID, user_id: uuid.UUID, status: str) -> None:
    await conn.execute(
        text("UPDATE identity.user_organizations SET status = :s, version = version + 1, updated_at = now() "
             "WHERE organization_id = :o AND user_id = :u"),
        {"o": org_id, "u": user_id, "s": status},
    )


async def delete_member(conn: Connection, org_id: uuid.UUID, user_id: uuid.UUID) -> None:
    await conn.execute(
        text("DELETE FROM identity.user_organizations WHERE organization_id = :o AND user_id = :u"),
        {"o": org_id, "u": user_id},
    )


async def insert_member(conn: Connection, org_id: uuid.UUID, user_id: uuid.UUID, role: str,
                        custom_role_id: uuid.UUID | None, invited_by: uuid.UUID | None) -> None:
    await conn.execute(
        text("INSERT INTO identity.user_organizations "
             "(user_id, organization_id, role, custom_role_id, status, joined_at, invited_by) "
             "VALUES (:u, :o, :r, :cr, 'active', now(), :by)"),
        {"u": user_id, "o": org_id, "r": role, "cr": custom_role_id, "by": invited_by},
    )


async def lock_members_with_role(conn: Connection, org_id: uuid.UUID, role_id: uuid.UUID) -> list[uuid.UUID]:
    return list((await conn.execute(
        text("SELECT user_id FROM identity.user_organizations WHERE organization_id = :o AND custom_role_id = :r "
             "ORDER BY user_id FOR UPDATE"),
        {"o": org_id, "r": role_id},
    )).scalars().all())


async def count_members_with_role(conn: Connection, org_id: uuid.UUID, role_id: uuid.UUID) -> int:
    return (await conn.execute(
        text("SELECT count(*) FROM identity.user_organizations WHERE organization_id = :o AND custom_role_id = :r"),
        {"o": org_id, "r": role_id},
    )).scalar() or 0


async def revoke_member_sessions(conn: Connection, org_id: uuid.UUID, user_id: uuid.UUID) -> int:
    """Ends the member's refresh sessions in this organization."""
    result = await conn.execute(
        text("UPDATE identity.refresh_tokens SET revoked_at = now(), updated_at = now() "
             "WHERE organization_id = :o AND user_id = :u AND revoked_at IS NULL"),
        {"o": org_id, "u": user_id},
    )
    return result.rowcount


async def upsert_revocation(conn: Connection, org_id: uuid.UUID, user_id: uuid.UUID, not_before: float,
                            horizon: float) -> None:
    """The member's tokens for the organization issued before not_before are refused (store/revocations.py)."""
    await revocations.record(conn, MEMBERSHIP, org_id, str(user_id), not_before, horizon)


# -- users (global, not tenant data) --------------------------------------------------------


_USER = "SELECT id, email, is_active, default_organization_id FROM identity.users WHERE deleted_at IS NULL AND "


async def user_status(conn: Connection, user_id: uuid.UUID) -> dict[str, Any] | None:
    return await first(conn, _USER + "id = :u", {"u": user_id})


async def user_by_email(conn: Connection, email: str) -> dict[str, Any] | None:
    return await first(conn, _USER + "lower(email) = lower(:e)", {"e": email})


async def member_by_email(conn: Connection, org_id: uuid.UUID, email: str) -> Member | None:
    return await first(
        conn, f"SELECT {_MEMBER_COLUMNS}FROM identity.user_organizations m JOIN identity.users u ON u.id = m.user_id "
        "WHERE m.organization_id = :o AND lower(u.email) = lower(:e) AND u.deleted_at IS NULL",
        {"o": org_id, "e": email}, _member)


async def insert_invited_user(conn: Connection, user_id: uuid.UUID, email: str, password_hash: str, first_name: str,
                              last_name: str, default_org: uuid.UUID) -> None:
    """An account created by accepting an invitation: the link proved the address."""
    try:
        async with conn.begin_nested():
            await conn.execute(
                text("INSERT INTO identity.users (id, email, password_hash, first_name, last_name, "
                     "default_organization_id, email_verified_at) VALUES (:id, :e, :ph, :fn, :ln, :o, now())"),
                {"id": user_id, "e": email, "ph": password_hash, "fn": first_name, "ln": last_name, "o": default_org},
            )
    except IntegrityError:
        raise AlreadyExists("an account with this email already exists", reason="EMAIL_TAKEN") from None


async def set_default_organization(conn: Connection, user_id: uuid.UUID, org_id: uuid.UUID) -> None:
    await conn.execute(
        text("UPDATE identity.users SET default_organization_id = :o, updated_at = now() WHERE id = :u"),
        {"o": org_id, "u": user_id},
    )


async def mark_email_verified(conn: Connection, user_id: uuid.UUID) -> None:
    await conn.execute(
        text("UPDATE identity.users SET email_verified_at = coalesce(email_verified_at, now()), updated_at = now() "
             "WHERE id = :u"),
        {"u": user_id},
    )


async def clear_default_organization(conn: Connection, user_id: uuid.UUID, org_id: uuid.UUID) -> None:
    await conn.execute(
        text("UPDATE identity.users SET default_organization_id = NULL, updated_at = now() "
             "WHERE id = :u AND default_organization_id = :o"),
        {"u": user_id, "o": org_id},
    )


async def adopt_default_organization(conn: Connection, user_id: uuid.UUID) -> None:
    """A user without a default organization gets their earliest active membership (needs the
    unit of work's user_id: the own_rows policy)."""
    await conn.execute(
        text("UPDATE identity.users SET default_organization_id = (SELECT organization_id "
             "FROM identity.user_organizations WHERE user_id = :u AND status = 'active' "
             "ORDER BY joined_at, created_at LIMIT 1), updated_at = now() "
             "WHERE id = :u AND default_organization_id IS NULL"),
        {"u": user_id},
    )


async def active_members(conn: Connection, org_id: uuid.UUID) -> list[ActiveMember]:
    """The organization's active members: user id, role and custom role id."""
    rows = (await conn.execute(
        text("SELECT user_id, role, custom_role_id FROM identity.user_organizations "
             "WHERE organization_id = :org AND status = 'active' ORDER BY user_id"),
        {"org": org_id},
    )).mappings().all()
    return [ActiveMember(**dict(r)) for r in rows]
