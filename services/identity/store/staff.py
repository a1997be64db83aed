"""identity's SQL for staff profiles. OAuth refresh tokens are stored sealed (never in clear)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text

from chassis.db import Connection
from chassis.sql import by_name, first

_COLUMNS = ("s.user_id, s.email_signature, s.gmail_email, s.microsoft_email, s.is_active, s.created_at, "
            "s.updated_at")


@dataclass(frozen=True, slots=True)
class StaffProfile:
    """A member's staff profile (a member without one shows the defaults, no update time)."""

    user_id: uuid.UUID
    email_signature: str | None
    gmail_email: str | None
    microsoft_email: str | None
    is_active: bool
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def mailbox(self, provider: str) -> str | None:
        """The connected mailbox address of a provider, if any."""
        return getattr(self, PROVIDER_COLUMNS[provider][0])


_staff_profile = by_name(StaffProfile)


# Column names per provider: fixed strings, never from input.
PROVIDER_COLUMNS = {
    "gmail": ("gmail_email", "gmail_refresh_token_sealed"),
    "microsoft": ("microsoft_email", "microsoft_refresh_token_sealed"),
}


async def get(conn: Connection, org_id: uuid.UUID, user_id: uuid.UUID) -> StaffProfile | None:
    return await first(
        conn, f"SELECT {_COLUMNS} FROM identity.staff s WHERE s.organization_id = :o AND s.user_id = :u",
        {"o": org_id, "u": user_id}, _staff_profile)


async def ensure(conn: Connection, org_id: uuid.UUID, user_id: uuid.UUID) -> None:
    await conn.execute(
        text("INSERT INTO identity.staff (organization_id, user_id) VALUES (:o, :u) "
             "ON CONFLICT (organization_id, user_id) DO NOTHING"),
        {"o": org_id, "u": user_id},
    )


async def set_signature(conn: Connection, org_id: uuid.UUID, user_id: uuid.UUID, signature: str) -> None:
    await ensure(conn, org_id, user_id)
    await conn.execute(
        text("UPDATE identity.staff SET email_signature = :sig, updated_at = now() "
             "WHERE organization_id = :o AND user_id = :u"),
        {"o": org_id, "u": user_id, "sig": signature},
    )


async def set_mailbox(conn: Connection, org_id: uuid.UUID, user_id: uuid.UUID, provider: str, email: str | None,
                      sealed_token: str | None) -> None:
    email_col, token_col = PROVIDER_COLUMNS[provider]
    await ensure(conn, org_id, user_id)
    await conn.execute(
        text(f"UPDATE identity.staff SET {email_col} = :e, {token_col} = :t, updated_at = now() "
             "WHERE organization_id = :o AND user_id = :u"),
        {"o": org_id, "u": user_id, "e": email, "t": sealed_token},
    )


async def sealed_refresh_token(conn: Connection, org_id: uuid.UUID, user_id: uuid.UUID, provider: str) -> str | None:
    _, token_col = PROVIDER_COLUMNS[provider]
    return (await conn.execute(
        text(f"SELECT {token_col} FROM identity.staff WHERE organization_id = :o AND user_id = :u"),
        {"o": org_id, "u": user_id},
    )).scalar()


async def set_active(conn: Connection, org_id: uuid.UUID, user_id: uuid.UUID, active: bool) -> None:
    await conn.execute(
        text("UPDATE identity.staff SET is_active = :a, updated_at = now() "
             "WHERE organization_id = :o AND user_id = :u"),
        {"o": org_id, "u": user_id, "a": active},
    )


async def delete(conn: Connection, org_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """A removed member's profile goes, and their mailbox tokens with it."""
    await conn.execute(text("DELETE FROM identity.staff WHERE organization_id = :o AND user_id = :u"),
                       {"o": org_id, "u": user_id})
