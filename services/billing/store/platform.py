"""The platform's collection of its invoices: each charge attempt by the provider's payment id,
and the verified events of the platform's own payment account (stored once per event id)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from chassis.db import Connection


async def attempts(conn: Connection, org: uuid.UUID, invoice_id: uuid.UUID) -> int:
    return (await conn.execute("SELECT count(*) FROM billing.platform_charges WHERE organization_id = :org AND "
                               "invoice_id = :inv", {"org": org, "inv": invoice_id})).scalar()


async def record_charge(conn: Connection, org: uuid.UUID, payment_id: str, invoice_id: uuid.UUID, attempt: int,
                        amount: Decimal, currency: str, status: str, failure: str = "") -> None:
    """The charge's outcome (inserted, or moved on from processing)."""
    await conn.execute(
        "INSERT INTO billing.platform_charges (organization_id, payment_id, invoice_id, attempt, amount, currency, "
        "status, failure) VALUES (:org, :pid, :inv, :attempt, :amount, :currency, :status, :failure) "
        "ON CONFLICT (organization_id, payment_id) DO UPDATE SET status = EXCLUDED.status, "
        "failure = EXCLUDED.failure, updated_at = now()",
        {"org": org, "pid": payment_id, "inv": invoice_id, "attempt": attempt, "amount": amount,
         "currency": currency, "status": status, "failure": failure[:500]})


async def charge(conn: Connection, org: uuid.UUID, payment_id: str) -> dict | None:
    r = (await conn.execute("SELECT * FROM billing.platform_charges WHERE organization_id = :org AND "
                            "payment_id = :pid FOR UPDATE", {"org": org, "pid": payment_id})).first()
    return dict(r) if r else None


async def store_event(conn: Connection, org: uuid.UUID, event_id: str, event_type: str, payment_id: str,
                      payload: str) -> bool:
    """False when the event id was stored already (a replay)."""
    r = await conn.execute(
        "INSERT INTO billing.platform_events (organization_id, event_id, event_type, payment_id, payload) "
        "VALUES (:org, :eid, :etype, :pid, CAST(:payload AS jsonb)) ON CONFLICT DO NOTHING",
        {"org": org, "eid": event_id, "etype": event_type, "pid": payment_id, "payload": payload})
    return r.rowcount == 1


async def set_outcome(conn: Connection, org: uuid.UUID, event_id: str, outcome: str) -> None:
    await conn.execute("UPDATE billing.platform_events SET outcome = :outcome, updated_at = now() "
                       "WHERE organization_id = :org AND event_id = :eid",
                       {"org": org, "eid": event_id, "outcome": outcome})
