"""Gateway configs (credentials sealed by the handler before they get here), webhook events,
and the gifts and refunds they reported."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy.exc import IntegrityError

from chassis.db import Connection
from chassis.errors import AlreadyExists

_PUBLIC = ("id, organization_id, gateway, nickname, secret_key_hint, test_mode, active, created_by, version, "
           "created_at, updated_at, deleted_at")


async def insert_config(conn: Connection, org: uuid.UUID, config_id: uuid.UUID, values: dict[str, Any],
                        request_id: str | None) -> bool:
    try:
        async with conn.begin_nested():
            r = await conn.execute(
                "INSERT INTO billing.gateway_configs (id, organization_id, gateway, nickname, credentials, "
                "webhook_secret, secret_key_hint, test_mode, active, created_by, create_request_id) VALUES "
                "(:id, :org, :gateway, :nickname, :credentials, :webhook_secret, :hint, :test_mode, :active, "
                ":created_by, :rid) ON CONFLICT (organization_id, create_request_id) WHERE create_request_id IS NOT "
                "NULL DO NOTHING", {"id": config_id, "org": org, "rid": request_id, **values})
    except IntegrityError as exc:
        if "gateway_configs_one_active" in str(exc):
            raise AlreadyExists(f"the organization has an active {values['gateway']} config already",
                                reason="GATEWAY_CONFIG_EXISTS", metadata={"gateway": values["gateway"]}) from None
        raise
    return r.rowcount == 1


async def config_by_request_id(conn: Connection, org: uuid.UUID, request_id: str) -> dict | None:
    r = (await conn.execute(f"SELECT {_PUBLIC} FROM billing.gateway_configs WHERE organization_id = :org AND "
                            "create_request_id = :rid", {"org": org, "rid": request_id})).first()
    return dict(r) if r else None


async def config(conn: Connection, org: uuid.UUID, config_id: uuid.UUID, *, for_update: bool = False) -> dict | None:
    lock = " FOR UPDATE" if for_update else ""
    r = (await conn.execute(f"SELECT {_PUBLIC} FROM billing.gateway_configs WHERE organization_id = :org AND "
                            f"id = :id AND deleted_at IS NULL{lock}", {"org": org, "id": config_id})).first()
    return dict(r) if r else None


async def configs(conn: Connection, org: uuid.UUID) -> list[dict]:
    rows = (await conn.execute(f"SELECT {_PUBLIC} FROM billing.gateway_configs WHERE organization_id = :org AND "
                               "deleted_at IS NULL ORDER BY created_at, id", {"org": org})).all()
    return [dict(r) for r in rows]


async def webhook_secret(conn: Connection, org: uuid.UUID, config_id: uuid.UUID) -> tuple[str, str] | None:
    """(sealed webhook secret, gateway) of a live, active config of the organization."""
    r = (await conn.execute("SELECT webhook_secret, gateway FROM billing.gateway_configs WHERE organization_id = :org "
                            "AND id = :id AND deleted_at IS NULL AND active", {"org": org, "id": config_id})).first()
    return (r["webhook_secret"], r["gateway"]) if r else None


async def soft_delete(conn: Connection, org: uuid.UUID, config_id: uuid.UUID) -> None:
    await conn.execute("UPDATE billing.gateway_configs SET deleted_at = now(), active = false, version = version + 1, "
                       "updated_at = now() WHERE organization_id = :org AND id = :id", {"org": org, "id": config_id})


# -- webhook events, gifts, refunds -------------------------------------------------------------


async def store_events(conn: Connection, org: uuid.UUID, events: list[dict[str, Any]],
                       ) -> tuple[set[uuid.UUID], set[tuple[str, str]]]:
    """Stores events (distinct ids) in one statement, each only once per id and only for a config
    still active: (the active configs among theirs, the (gateway, event id) stored now). The
    statement sets the tenant itself (billing.store_webhook_events), so it may run inside a unit of
    work or as a transaction of its own (`Database.alone`)."""
    row = (await conn.execute(
        "SELECT active, stored FROM billing.store_webhook_events(CAST(:org AS uuid), CAST(:cfgs AS uuid[]), "
        "CAST(:gateways AS text[]), CAST(:eids AS text[]), CAST(:etypes AS text[]), CAST(:pids AS text[]), "
        "CAST(:payloads AS text[]), CAST(:statuses AS text[]))",
        {"org": org, "cfgs": [e["config_id"] for e in events], "gateways": [e["gateway"] for e in events],
         "eids": [e["event_id"] for e in events], "etypes": [e["event_type"] for e in events],
         "pids": [e["payment_id"] for e in events], "payloads": [e["payload"] for e in events],
         "statuses": [e["status"] for e in events]})).one()
    stored = {tuple(s.split(" ", 1)) for s in row["stored"] or ()}
    return set(row["active"] or ()), stored


async def mark_waiting(conn: Connection, org: uuid.UUID, gateway: str, event_id: str) -> None:
    await conn.execute("UPDATE billing.webhook_events SET status = 'waiting', processed_at = NULL, updated_at = now() "
                       "WHERE organization_id = :org AND gateway = :g AND event_id = :eid",
                       {"org": org, "g": gateway, "eid": event_id})


async def waiting_events(conn: Connection, org: uuid.UUID, gateway: str, payment_id: str) -> list[dict]:
    rows = (await conn.execute(
        "SELECT event_id, payload FROM billing.webhook_events WHERE organization_id = :org AND gateway = :g AND "
        "payment_id = :pid AND status = 'waiting' ORDER BY created_at FOR UPDATE",
        {"org": org, "g": gateway, "pid": payment_id})).all()
    return [{"event_id": r["event_id"], "payload": json.loads(r["payload"]) if isinstance(r["payload"], str)
             else r["payload"]} for r in rows]


async def mark_processed(conn: Connection, org: uuid.UUID, gateway: str, event_id: str) -> None:
    await conn.execute("UPDATE billing.webhook_events SET status = 'processed', processed_at = now(), "
                       "updated_at = now() WHERE organization_id = :org AND gateway = :g AND event_id = :eid",
                       {"org": org, "g": gateway, "eid": event_id})


async def insert_payment(conn: Connection, org: uuid.UUID, gateway: str, payment_id: str, amount: Decimal,
                         currency: str, email: str) -> bool:
    r = await conn.execute(
        "INSERT INTO billing.payments (organization_id, gateway, payment_id, amount, currency, donor_email) "
        "VALUES (:org, :g, :pid, :amount, :currency, :email) ON CONFLICT DO NOTHING",
        {"org": org, "g": gateway, "pid": payment_id, "amount": amount, "currency": currency, "email": email})
    return r.rowcount == 1


async def payment(conn: Connection, org: uuid.UUID, gateway: str, payment_id: str) -> dict | None:
    r = (await conn.execute("SELECT * FROM billing.payments WHERE organization_id = :org AND gateway = :g AND "
                            "payment_id = :pid FOR UPDATE", {"org": org, "g": gateway, "pid": payment_id})).first()
    return dict(r) if r else None


async def insert_refund(conn: Connection, org: uuid.UUID, gateway: str, refund_id: str, payment_id: str,
                        amount: Decimal) -> bool:
    r = await conn.execute(
        "INSERT INTO billing.refunds (organization_id, gateway, refund_id, payment_id, amount) VALUES "
        "(:org, :g, :rid, :pid, :amount) ON CONFLICT DO NOTHING",
        {"org": org, "g": gateway, "rid": refund_id, "pid": payment_id, "amount": amount})
    if r.rowcount == 1:
        await conn.execute("UPDATE billing.payments SET refunded_amount = refunded_amount + :amount, "
                           "updated_at = now() WHERE organization_id = :org AND gateway = :g AND payment_id = :pid",
                           {"org": org, "g": gateway, "pid": payment_id, "amount": amount})
    return r.rowcount == 1
