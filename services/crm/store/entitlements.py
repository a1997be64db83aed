"""crm's replica of the organization's entitlements (billing.entitlements.changed)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import text

from chassis.db import Connection


async def record(conn: Connection, org: uuid.UUID, plan_code: str, donors: int, seats: int,
                 decided_at: datetime) -> bool:
    """Keeps the newest decision: an older event arriving late changes nothing."""
    r = await conn.execute(
        text("INSERT INTO crm.entitlements (organization_id, plan_code, donors, seats, decided_at) "
             "VALUES (:org, :plan, :donors, :seats, :at) ON CONFLICT (organization_id) DO UPDATE SET "
             "plan_code = EXCLUDED.plan_code, donors = EXCLUDED.donors, seats = EXCLUDED.seats, "
             "decided_at = EXCLUDED.decided_at, updated_at = now() "
             "WHERE crm.entitlements.decided_at < EXCLUDED.decided_at"),
        {"org": org, "plan": plan_code, "donors": donors, "seats": seats, "at": decided_at})
    return r.rowcount == 1


async def donor_limit(conn: Connection, org: uuid.UUID) -> tuple[int, str] | None:
    """(limit, plan code), the replica's row locked so concurrent creations count one after the other;
    None when billing has said nothing yet."""
    row = (await conn.execute(text("SELECT donors, plan_code FROM crm.entitlements WHERE organization_id = :org "
                                   "FOR UPDATE"), {"org": org})).first()
    return (row[0], row[1]) if row else None


async def live_donors(conn: Connection, org: uuid.UUID) -> int:
    return (await conn.execute(text("SELECT count(*) FROM crm.donors WHERE organization_id = :org "
                                    "AND deleted_at IS NULL"), {"org": org})).scalar()
