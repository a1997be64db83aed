"""Online gifts' SQL: the donor an email belongs to, and refunds waiting for their gift."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from sqlalchemy import text

from chassis.db import Connection


async def donor_by_email(conn: Connection, org: uuid.UUID, email: str) -> uuid.UUID | None:
    """The live donor with this email (the oldest, when several share it)."""
    return (await conn.execute(
        text("SELECT id FROM crm.donors WHERE organization_id = :org AND lower(email) = lower(:email) "
             "AND deleted_at IS NULL ORDER BY created_at, id LIMIT 1"), {"org": org, "email": email})).scalar()


async def hold_refund(conn: Connection, org: uuid.UUID, refund_key: str, payment_key: str, amount: Decimal,
                      currency: str, refund_date: date) -> None:
    await conn.execute(
        text("INSERT INTO crm.pending_gateway_refunds (organization_id, refund_key, payment_key, amount, currency, "
             "refund_date) VALUES (:org, :rk, :pk, :amount, :currency, :d) ON CONFLICT DO NOTHING"),
        {"org": org, "rk": refund_key, "pk": payment_key, "amount": amount, "currency": currency, "d": refund_date})


async def take_held_refunds(conn: Connection, org: uuid.UUID, payment_key: str) -> list[dict]:
    rows = (await conn.execute(
        text("DELETE FROM crm.pending_gateway_refunds WHERE organization_id = :org AND payment_key = :pk "
             "RETURNING refund_key, amount, currency, refund_date"), {"org": org, "pk": payment_key})).all()
    return [dict(r) for r in rows]
