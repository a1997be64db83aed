"""identity's SQL for memberships, custom roles, invitations and membership revocations.

Every query runs under the unit of work's tenant (row-level security) and filters on the
organization as well.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from chassis.errors import AlreadyExists


def _json(value: Any) -> dict:
    if value is None:
        return {}
    if isinstance(value, str | bytes):
        return json.loads(value)
    return dict(value)


def _member(row: Any) -> dict[str, Any]:
    out = dict(row)
    out["permissions_override"] = _json(out.get("permissions_override"))
    return out


_MEMBER_COLUMNS = (
    "m.user_id, u.email, u.first_name, u.last_name, m.role, m.custom_role_id, m.status, "
    "m.permissions_override, m.joined_at, m.created_at, m.updated_at, m.version "
)

# -- memberships --------------------------------------------------------------------------


async def lock_organization(conn: Any, org_id: uuid.UUID) -> None:
    """Serializes membership changes of one organization (the last-owner rule counts owners).
    FOR NO KEY UPDATE: it does not block inserts that reference the organization."""
    await conn.execute(text("SELECT 1 FROM identity.organizations WHERE id = :o FOR NO KEY UPDATE"), {"o": org_id})


async def page_members(conn: Any, org_id: uuid.UUID, after: tuple[datetime, uuid.UUID] | None,
                       limit: int) -> list[dict[str, Any]]:
    sql = (f"SELECT {_MEMBER_COLUMNS}FROM identity.user_organizations m JOIN identity.users u ON u.id = m.user_id "
           "WHERE m.organization_id = :o ")
    params: dict[str, Any] = {"o": org_id, "limit": limit}
    if after is not None:
        sql += "AND (m.created_at, m.user_id) > (CAST(:after_t AS timestamptz), CAST(:after_id AS uuid)) "
        params.update(after_t=after[0], after_id=after[1])
    sql += "ORDER BY m.created_at, m.user_id LIMIT :limit"
    rows = (await conn.execute(text(sql), params)).mappings().all()
    return [_member(r) for r in rows]


async def get_member(conn: Any, org_id: uuid.UUID, user_id: uuid.UUID, *, for_update: bool = False
                     ) -> dict[str, Any] | None:
    sql = (f"SELECT {_MEMBER_COLUMNS}FROM identity.user_organizations m JOIN identity.users u ON u.id = m.user_id "
           "WHERE m.organization_id = :o AND m.user_id = :u")
    if for_update:
        sql += " FOR UPDATE OF m"
    row = (await conn.execute(text(sql), {"o": org_id, "u": user_id})).mappings().first()
    return _member(row) if row else None


async def membership_for_tokens(conn: Any, org_id: uuid.UUID, user_id: uuid.UUID) -> dict[str, Any] | None:
    """Role, custom role permissions and overrides, for an access token. FOR SHARE: a change
    of the membership waits for the token being issued, and its not_before comes after it."""
    row = (await conn.execute(
        text("SELECT m.role, m.custom_role_id, m.status, m.permissions_override, r.permissions AS role_permissions "
             "FROM identity.user_organizations m LEFT JOIN identity.roles r "
             "ON r.organization_id = m.organization_id AND r.id = m.custom_role_id "
             "WHERE m.organization_id = :o AND m.user_id = :u FOR SHARE OF m"),
        {"o": org_id, "u": user_id},
    )).mappings().first()
    return _member(row) if row else None


async def count_active_owners(conn: Any, org_id: uuid.UUID) -> int:
    return (await conn.execute(
        text("SELECT count(*) FROM identity.user_organizations "
             "WHERE organization_id = :o AND role = 'owner' AND status = 'active'"),
        {"o": org_id},
    )).scalar() or 0


async def update_member_role(conn: Any, org_id: uuid.UUID, user_id: uuid.UUID, role: str,
                             custom_role_id: uuid.UUID | None, overrides: dict) -> None:
    await conn.execute(
        text("UPDATE identity.user_organizations SET role = :r, custom_role_id = :cr, "
             "permissions_override = CAST(:po AS jsonb), version = version + 1, updated_at = now() "
             "WHERE organization_id = :o AND user_id = :u"),
        {"o": org_id, "u": user_id, "r": role, "cr": custom_role_id, "po": json.dumps(overrides)},
    )


async def set_member_status(conn: Any, org_id: uuid.UUID, user_id: uuid.UUID, status: str) -> None:
    await conn.execute(
        text("UPDATE identity.user_organizations SET status = :s, version = version + 1, updated_at = now() "
             "WHERE organization_id = :o AND user_id = :u"),
        {"o": org_id, "u": user_id, "s": status},
    )


async def delete_member(conn: Any, org_id: uuid.UUID, user_id: uuid.UUID) -> None:
    await conn.execute(
        text("DELETE FROM identity.user_organizations WHERE organization_id = :o AND user_id = :u"),
        {"o": org_id, "u": user_id},
    )


async def insert_member(conn: Any, org_id: uuid.UUID, user_id: uuid.UUID, role: str,
                        custom_role_id: uuid.UUID | None, invited_by: uuid.UUID | None) -> None:
    await conn.execute(
        text("INSERT INTO identity.user_organizations "
             "(user_id, organization_id, role, custom_role_id, status, joined_at, invited_by) "
             "VALUES (:u, :o, :r, :cr, 'active', now(), :by)"),
        {"u": user_id, "o": org_id, "r": role, "cr": custom_role_id, "by": invited_by},
    )


async def lock_members_with_role(conn: Any, org_id: uuid.UUID, role_id: uuid.UUID) -> list[uuid.UUID]:
    return list((await conn.execute(
        text("SELECT user_id FROM identity.user_organizations WHERE organization_id = :o AND custom_role_id = :r "
             "ORDER BY user_id FOR UPDATE"),
        {"o": org_id, "r": role_id},
    )).scalars().all())


async def count_members_with_role(conn: Any, org_id: uuid.UUID, role_id: uuid.UUID) -> int:
    return (await conn.execute(
        text("SELECT count(*) FROM identity.user_organizations WHERE organization_id = :o AND custom_role_id = :r"),
        {"o": org_id, "r": role_id},
    )).scalar() or 0


async def revoke_member_sessions(conn: Any, org_id: uuid.UUID, user_id: uuid.UUID) -> int:
    """Ends the member's refresh sessions in this organization."""
    result = await conn.execute(
        text("UPDATE identity.refresh_tokens SET revoked_at = now(), updated_at = now() "
             "WHERE organization_id = :o AND user_id = :u AND revoked_at IS NULL"),
        {"o": org_id, "u": user_id},
    )
    return result.rowcount


async def upsert_revocation(conn: Any, org_id: uuid.UUID, user_id: uuid.UUID, not_before: float) -> None:
    await conn.execute(
        text("INSERT INTO identity.membership_revocations (organization_id, user_id, not_before) "
             "VALUES (:o, :u, to_timestamp(:nb)) ON CONFLICT (organization_id, user_id) DO UPDATE SET "
             "not_before = GREATEST(identity.membership_revocations.not_before, EXCLUDED.not_before), "
             "updated_at = now()"),
        {"o": org_id, "u": user_id, "nb": not_before},
    )


# -- users (global, not tenant data) --------------------------------------------------------


async def user_status(conn: Any, user_id: uuid.UUID) -> dict[str, Any] | None:
    row = (await conn.execute(
        text("SELECT id, email, is_active, default_organization_id FROM identity.users "
             "WHERE id = :u AND deleted_at IS NULL"),
        {"u": user_id},
    )).mappings().first()
    return dict(row) if row else None


async def user_by_email(conn: Any, email: str) -> dict[str, Any] | None:
    row = (await conn.execute(
        text("SELECT id, email, is_active, default_organization_id FROM identity.users "
             "WHERE lower(email) = lower(:e) AND deleted_at IS NULL"),
        {"e": email},
    )).mappings().first()
    return dict(row) if row else None


async def member_by_email(conn: Any, org_id: uuid.UUID, email: str) -> dict[str, Any] | None:
    row = (await conn.execute(
        text(f"SELECT {_MEMBER_COLUMNS}FROM identity.user_organizations m JOIN identity.users u ON u.id = m.user_id "
             "WHERE m.organization_id = :o AND lower(u.email) = lower(:e) AND u.deleted_at IS NULL"),
        {"o": org_id, "e": email},
    )).mappings().first()
    return _member(row) if row else None


async def insert_invited_user(conn: Any, user_id: uuid.UUID, email: str, password_hash: str, first_name: str,
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


async def set_default_organization(conn: Any, user_id: uuid.UUID, org_id: uuid.UUID) -> None:
    await conn.execute(
        text("UPDATE identity.users SET default_organization_id = :o, updated_at = now() WHERE id = :u"),
        {"o": org_id, "u": user_id},
    )


async def mark_email_verified(conn: Any, user_id: uuid.UUID) -> None:
    await conn.execute(
        text("UPDATE identity.users SET email_verified_at = coalesce(email_verified_at, now()), updated_at = now() "
             "WHERE id = :u"),
        {"u": user_id},
    )


async def mfa_enabled(conn: Any, user_id: uuid.UUID) -> bool:
    return bool((await conn.execute(
        text("SELECT enabled FROM identity.user_mfa WHERE user_id = :u"), {"u": user_id},
    )).scalar())


async def clear_default_organization(conn: Any, user_id: uuid.UUID, org_id: uuid.UUID) -> None:
    await conn.execute(
        text("UPDATE identity.users SET default_organization_id = NULL, updated_at = now() "
             "WHERE id = :u AND default_organization_id = :o"),
        {"u": user_id, "o": org_id},
    )


async def adopt_default_organization(conn: Any, user_id: uuid.UUID) -> None:
    """A user without a default organization gets their earliest active membership (needs the
    unit of work's user_id: the own_rows policy)."""
    await conn.execute(
        text("UPDATE identity.users SET default_organization_id = (SELECT organization_id "
             "FROM identity.user_organizations WHERE user_id = :u AND status = 'active' "
             "ORDER BY joined_at, created_at LIMIT 1), updated_at = now() "
             "WHERE id = :u AND default_organization_id IS NULL"),
        {"u": user_id},
    )


# -- custom roles ---------------------------------------------------------------------------

_ROLE_COLUMNS = "id, organization_id, name, description, permissions, version, created_at, updated_at"


async def list_roles(conn: Any, org_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = (await conn.execute(
        text(f"SELECT {_ROLE_COLUMNS} FROM identity.roles WHERE organization_id = :o ORDER BY lower(name), id"),
        {"o": org_id},
    )).mappings().all()
    return [dict(r) for r in rows]


async def get_role(conn: Any, org_id: uuid.UUID, role_id: uuid.UUID, *, for_update: bool = False
                   ) -> dict[str, Any] | None:
    sql = f"SELECT {_ROLE_COLUMNS} FROM identity.roles WHERE organization_id = :o AND id = :id"
    if for_update:
        sql += " FOR UPDATE"
    row = (await conn.execute(text(sql), {"o": org_id, "id": role_id})).mappings().first()
    return dict(row) if row else None


async def role_by_request(conn: Any, org_id: uuid.UUID, request_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(
        text(f"SELECT {_ROLE_COLUMNS} FROM identity.roles WHERE organization_id = :o AND request_id = :r"),
        {"o": org_id, "r": request_id},
    )).mappings().first()
    return dict(row) if row else None


def _name_taken(name: str) -> AlreadyExists:
    return AlreadyExists(f"a role named {name!r} already exists", reason="ROLE_NAME_TAKEN")


async def insert_role(conn: Any, org_id: uuid.UUID, role_id: uuid.UUID, name: str, description: str,
                      permissions: list[str], request_id: str | None) -> dict[str, Any] | None:
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
    return dict(row) if row else None


async def update_role(conn: Any, org_id: uuid.UUID, role_id: uuid.UUID, name: str, description: str,
                      permissions: list[str]) -> dict[str, Any]:
    try:
        async with conn.begin_nested():
            row = (await conn.execute(
                text("UPDATE identity.roles SET name = :n, description = :d, permissions = :p, "
                     "version = version + 1, updated_at = now() WHERE organization_id = :o AND id = :id "
                     f"RETURNING {_ROLE_COLUMNS}"),
                {"id": role_id, "o": org_id, "n": name, "d": description, "p": permissions},
            )).mappings().one()
    except IntegrityError:
        raise _name_taken(name) from None
    return dict(row)


async def delete_role(conn: Any, org_id: uuid.UUID, role_id: uuid.UUID) -> None:
    # Settled invitations keep their history without the role; pending ones were refused before.
    await conn.execute(
        text("UPDATE identity.invitations SET custom_role_id = NULL, updated_at = now() "
             "WHERE organization_id = :o AND custom_role_id = :id"),
        {"o": org_id, "id": role_id},
    )
    await conn.execute(text("DELETE FROM identity.roles WHERE organization_id = :o AND id = :id"),
                       {"o": org_id, "id": role_id})


# -- invitations ----------------------------------------------------------------------------

_INVITATION_COLUMNS = (
    "id, organization_id, email, role, custom_role_id, invited_by, expires_at, accepted_at, accepted_by, "
    "revoked_at, created_at, updated_at"
)


async def insert_invitation(conn: Any, *, org_id: uuid.UUID, invitation_id: uuid.UUID, email: str, role: str,
                            custom_role_id: uuid.UUID | None, token_hash: bytes, invited_by: uuid.UUID,
                            expires_at: datetime, request_id: str | None) -> dict[str, Any] | None:
    """None when request_id was used before (AIP-155)."""
    row = (await conn.execute(
        text("INSERT INTO identity.invitations (id, organization_id, email, role, custom_role_id, token_hash, "
             "invited_by, expires_at, request_id) VALUES (:id, :o, :e, :r, :cr, :h, :by, :exp, :rid) "
             "ON CONFLICT (organization_id, request_id) WHERE request_id IS NOT NULL DO NOTHING "
             f"RETURNING {_INVITATION_COLUMNS}"),
        {"id": invitation_id, "o": org_id, "e": email, "r": role, "cr": custom_role_id, "h": token_hash,
         "by": invited_by, "exp": expires_at, "rid": request_id},
    )).mappings().first()
    return dict(row) if row else None


async def invitation_by_request(conn: Any, org_id: uuid.UUID, request_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(
        text(f"SELECT {_INVITATION_COLUMNS} FROM identity.invitations WHERE organization_id = :o AND request_id = :r"),
        {"o": org_id, "r": request_id},
    )).mappings().first()
    return dict(row) if row else None


async def revoke_pending_invitations(conn: Any, org_id: uuid.UUID, email: str) -> int:
    """A new invitation to the same address replaces the pending ones."""
    result = await conn.execute(
        text("UPDATE identity.invitations SET revoked_at = now(), updated_at = now() "
             "WHERE organization_id = :o AND lower(email) = lower(:e) AND accepted_at IS NULL "
             "AND revoked_at IS NULL AND expires_at > now()"),
        {"o": org_id, "e": email},
    )
    return result.rowcount


async def get_invitation(conn: Any, org_id: uuid.UUID, invitation_id: uuid.UUID, *, for_update: bool = False
                         ) -> dict[str, Any] | None:
    sql = f"SELECT {_INVITATION_COLUMNS} FROM identity.invitations WHERE organization_id = :o AND id = :id"
    if for_update:
        sql += " FOR UPDATE"
    row = (await conn.execute(text(sql), {"o": org_id, "id": invitation_id})).mappings().first()
    return dict(row) if row else None


async def invitation_by_token(conn: Any, org_id: uuid.UUID, token_hash: bytes) -> dict[str, Any] | None:
    row = (await conn.execute(
        text(f"SELECT {_INVITATION_COLUMNS} FROM identity.invitations "
             "WHERE organization_id = :o AND token_hash = :h FOR UPDATE"),
        {"o": org_id, "h": token_hash},
    )).mappings().first()
    return dict(row) if row else None


async def page_invitations(conn: Any, org_id: uuid.UUID, after: tuple[datetime, uuid.UUID] | None,
                           limit: int) -> list[dict[str, Any]]:
    sql = f"SELECT {_INVITATION_COLUMNS} FROM identity.invitations WHERE organization_id = :o "
    params: dict[str, Any] = {"o": org_id, "limit": limit}
    if after is not None:
        sql += "AND (created_at, id) < (CAST(:after_t AS timestamptz), CAST(:after_id AS uuid)) "
        params.update(after_t=after[0], after_id=after[1])
    sql += "ORDER BY created_at DESC, id DESC LIMIT :limit"
    return [dict(r) for r in (await conn.execute(text(sql), params)).mappings().all()]


async def set_invitation_revoked(conn: Any, org_id: uuid.UUID, invitation_id: uuid.UUID) -> dict[str, Any]:
    row = (await conn.execute(
        text("UPDATE identity.invitations SET revoked_at = coalesce(revoked_at, now()), updated_at = now() "
             f"WHERE organization_id = :o AND id = :id RETURNING {_INVITATION_COLUMNS}"),
        {"o": org_id, "id": invitation_id},
    )).mappings().one()
    return dict(row)


async def set_invitation_accepted(conn: Any, org_id: uuid.UUID, invitation_id: uuid.UUID,
                                  user_id: uuid.UUID) -> None:
    await conn.execute(
        text("UPDATE identity.invitations SET accepted_at = now(), accepted_by = :u, updated_at = now() "
             "WHERE organization_id = :o AND id = :id"),
        {"o": org_id, "id": invitation_id, "u": user_id},
    )


async def count_pending_invitations_with_role(conn: Any, org_id: uuid.UUID, role_id: uuid.UUID) -> int:
    return (await conn.execute(
        text("SELECT count(*) FROM identity.invitations WHERE organization_id = :o AND custom_role_id = :r "
             "AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now()"),
        {"o": org_id, "r": role_id},
    )).scalar() or 0


async def active_members(conn: Any, org_id: uuid.UUID) -> list[dict[str, Any]]:
    """The organization's active members: user id, role and custom role id."""
    rows = (await conn.execute(
        text("SELECT user_id, role, custom_role_id FROM identity.user_organizations "
             "WHERE organization_id = :org AND status = 'active' ORDER BY user_id"),
        {"org": org_id},
    )).mappings().all()
    return [dict(r) for r in rows]
