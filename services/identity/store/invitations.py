"""identity's SQL for invitations to an organization (tenant data: row-level security)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text

from chassis.db import Connection
from chassis.sql import by_id, by_name, first
from services.identity.store.members import HoldsRole


@dataclass(frozen=True, slots=True)
class Invitation(HoldsRole):
    id: uuid.UUID
    organization_id: uuid.UUID
    email: str
    role: str
    custom_role_id: uuid.UUID | None
    invited_by: uuid.UUID
    expires_at: datetime
    accepted_at: datetime | None
    accepted_by: uuid.UUID | None
    revoked_at: datetime | None
    created_at: datetime
    updated_at: datetime


_invitation = by_name(Invitation)


_INVITATION_COLUMNS = (
    "id, organization_id, email, role, custom_role_id, invited_by, expires_at, accepted_at, accepted_by, "
    "revoked_at, created_at, updated_at"
)


async def insert_invitation(conn: Connection, *, org_id: uuid.UUID, invitation_id: uuid.UUID, email: str, role: str,
                            custom_role_id: uuid.UUID | None, token_hash: bytes, invited_by: uuid.UUID,
                            expires_at: datetime, request_id: str | None) -> Invitation | None:
    """None when request_id was used before (AIP-155)."""
    row = (await conn.execute(
        text("INSERT INTO identity.invitations (id, organization_id, email, role, custom_role_id, token_hash, "
             "invited_by, expires_at, request_id) VALUES (:id, :o, :e, :r, :cr, :h, :by, :exp, :rid) "
             "ON CONFLICT (organization_id, request_id) WHERE request_id IS NOT NULL DO NOTHING "
             f"RETURNING {_INVITATION_COLUMNS}"),
        {"id": invitation_id, "o": org_id, "e": email, "r": role, "cr": custom_role_id, "h": token_hash,
         "by": invited_by, "exp": expires_at, "rid": request_id},
    )).mappings().first()
    return Invitation(**dict(row)) if row else None


async def invitation_by_request(conn: Connection, org_id: uuid.UUID, request_id: str) -> Invitation | None:
    return await first(
        conn, f"SELECT {_INVITATION_COLUMNS} FROM identity.invitations WHERE organization_id = :o AND request_id = :r",
        {"o": org_id, "r": request_id}, _invitation)


async def revoke_pending_invitations(conn: Connection, org_id: uuid.UUID, email: str) -> int:
    """A new invitation to the same address replaces the pending ones."""
    result = await conn.execute(
        text("UPDATE identity.invitations SET revoked_at = now(), updated_at = now() "
             "WHERE organization_id = :o AND lower(email) = lower(:e) AND accepted_at IS NULL "
             "AND revoked_at IS NULL AND expires_at > now()"),
        {"o": org_id, "e": email},
    )
    return result.rowcount


async def get_invitation(conn: Connection, org_id: uuid.UUID, invitation_id: uuid.UUID, *, for_update: bool = False
                         ) -> Invitation | None:
    return await by_id(conn, f"SELECT {_INVITATION_COLUMNS} FROM identity.invitations", org_id, invitation_id,
                       _invitation, for_update=for_update)


async def invitation_by_token(conn: Connection, org_id: uuid.UUID, token_hash: bytes) -> Invitation | None:
    return await first(
        conn, f"SELECT {_INVITATION_COLUMNS} FROM identity.invitations "
        "WHERE organization_id = :o AND token_hash = :h FOR UPDATE",
        {"o": org_id, "h": token_hash}, _invitation)


async def page_invitations(conn: Connection, org_id: uuid.UUID, after: tuple[datetime, uuid.UUID] | None,
                           limit: int) -> list[Invitation]:
    sql = f"SELECT {_INVITATION_COLUMNS} FROM identity.invitations WHERE organization_id = :o "
    params: dict[str, Any] = {"o": org_id, "limit": limit}
    if after is not None:
        sql += "AND (created_at, id) < (CAST(:after_t AS timestamptz), CAST(:after_id AS uuid)) "
        params.update(after_t=after[0], after_id=after[1])
    sql += "ORDER BY created_at DESC, id DESC LIMIT :limit"
    return [Invitation(**dict(r)) for r in (await conn.execute(text(sql), params)).mappings().all()]


async def set_invitation_revoked(conn: Connection, org_id: uuid.UUID, invitation_id: uuid.UUID) -> Invitation:
    row = (await conn.execute(
        text("UPDATE identity.invitations SET revoked_at = coalesce(revoked_at, now()), updated_at = now() "
             f"WHERE organization_id = :o AND id = :id RETURNING {_INVITATION_COLUMNS}"),
        {"o": org_id, "id": invitation_id},
    )).mappings().one()
    return Invitation(**dict(row))


async def set_invitation_accepted(conn: Connection, org_id: uuid.UUID, invitation_id: uuid.UUID,
                                  user_id: uuid.UUID) -> None:
    await conn.execute(
        text("UPDATE identity.invitations SET accepted_at = now(), accepted_by = :u, updated_at = now() "
             "WHERE organization_id = :o AND id = :id"),
        {"o": org_id, "id": invitation_id, "u": user_id},
    )


async def count_pending_invitations_with_role(conn: Connection, org_id: uuid.UUID, role_id: uuid.UUID) -> int:
    return (await conn.execute(
        text("SELECT count(*) FROM identity.invitations WHERE organization_id = :o AND custom_role_id = :r "
             "AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now()"),
        {"o": org_id, "r": role_id},
    )).scalar() or 0
