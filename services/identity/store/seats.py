"""identity's replica of the seat limit, and the seats taken."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import text

from chassis.db import Connection


async def record(conn: Connection, org: uuid.UUID, plan_code: str, seats: int, decided_at: datetime) -> None:
    """Keeps the newest decision; an organization identity does not know (deleted) is skipped."""
    await conn.execute(
        text("INSERT INTO identity.entitlements (organization_id, plan_code, seats, decided_at) "
             "SELECT :org, :plan, :seats, :at WHERE EXISTS (SELECT 1 FROM identity.organizations WHERE id = :org) "
             "ON CONFLICT (organization_id) DO UPDATE SET plan_code = EXCLUDED.plan_code, seats = EXCLUDED.seats, "
             "decided_at = EXCLUDED.decided_at, updated_at = now() "
             "WHERE identity.entitlements.decided_at < EXCLUDED.decided_at"),
        {"org": org, "plan": plan_code, "seats": seats, "at": decided_at})


async def limit(conn: Connection, org: uuid.UUID) -> tuple[int, str] | None:
    row = (await conn.execute(text("SELECT seats, plan_code FROM identity.entitlements WHERE organization_id = :org"),
                              {"org": org})).first()
    return (row[0], row[1]) if row else None


async def taken(conn: Connection, org: uuid.UUID) -> int:
    """Active members plus invitations still open."""
    return (await conn.execute(text(
        "SELECT (SELECT count(*) FROM identity.user_organizations WHERE organization_id = :org AND status = 'active') "
        "+ (SELECT count(*) FROM identity.invitations WHERE organization_id = :org AND accepted_at IS NULL "
        "AND revoked_at IS NULL AND expires_at > now())"), {"org": org})).scalar()
