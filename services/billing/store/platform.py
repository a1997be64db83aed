"""The platform's collection of its invoices: each charge attempt by the provider's payment id,
and the verified events of the platform's own payment account (stored once per event id)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from chassis.db import Connection
from services.billing.domain.platform import Card


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


# -- the organization as the platform's customer, and its saved card ------------------------------


async def customer(conn: Connection, org: uuid.UUID, *, for_update: bool = False) -> dict | None:
    lock = " FOR UPDATE" if for_update else ""
    r = (await conn.execute(f"SELECT * FROM billing.platform_customers WHERE organization_id = :org{lock}",
                            {"org": org})).first()
    return dict(r) if r else None


async def add_customer(conn: Connection, org: uuid.UUID, customer_id: str) -> dict:
    """The organization's customer row (the first one recorded wins)."""
    await conn.execute("INSERT INTO billing.platform_customers (organization_id, customer_id) VALUES (:org, :cus) "
                       "ON CONFLICT (organization_id) DO NOTHING", {"org": org, "cus": customer_id})
    return await customer(conn, org)


async def save_card(conn: Connection, org: uuid.UUID, customer_id: str, card: Card, setup_intent_id: str,
                    setup_time: datetime) -> None:
    await conn.execute(
        "INSERT INTO billing.platform_customers (organization_id, customer_id, payment_method_id, brand, last4, "
        "exp_month, exp_year, setup_intent_id, setup_time) VALUES (:org, :cus, :pm, :brand, :last4, :m, :y, :seti, "
        ":at) ON CONFLICT (organization_id) DO UPDATE SET payment_method_id = EXCLUDED.payment_method_id, "
        "brand = EXCLUDED.brand, last4 = EXCLUDED.last4, exp_month = EXCLUDED.exp_month, "
        "exp_year = EXCLUDED.exp_year, setup_intent_id = EXCLUDED.setup_intent_id, setup_time = EXCLUDED.setup_time, "
        "version = platform_customers.version + 1, updated_at = now()",
        {"org": org, "cus": customer_id, "pm": card.payment_method_id, "brand": card.brand, "last4": card.last4,
         "m": card.exp_month, "y": card.exp_year, "seti": setup_intent_id, "at": setup_time})


async def forget_card(conn: Connection, org: uuid.UUID, payment_method_id: str) -> bool:
    """Clears the saved card if it is still `payment_method_id` (not replaced meanwhile)."""
    r = await conn.execute(
        "UPDATE billing.platform_customers SET payment_method_id = NULL, brand = '', last4 = '', exp_month = 0, "
        "exp_year = 0, version = version + 1, updated_at = now() WHERE organization_id = :org AND "
        "payment_method_id = :pm", {"org": org, "pm": payment_method_id})
    return r.rowcount == 1
