"""An organization's payment gateway configs: credentials sealed (AES-256-GCM under a key id,
bound to the config's row), never returned; a masked hint only."""

from __future__ import annotations

import uuid

from chassis import context
from chassis.crypto import Keyring
from chassis.db import Database
from chassis.errors import InvalidArgument, NotFound, Violations
from chassis.resource import check_etag, check_request_id, parse_id
from services.billing.domain import gateways as rules
from services.billing.domain.gateways import ConfigFields
from services.billing.providers import razorpay_gateway, stripe_gateway
from services.billing.store import gateways as store


def aad(config_id: uuid.UUID, what: str) -> bytes:
    return f"billing.gateway_configs:{config_id}:{what}".encode()


async def create(db: Database, keyring: Keyring, org: uuid.UUID, c: ConfigFields, request_id: str) -> dict:
    v = Violations()
    test_mode = rules.check_config(c, v)
    check_request_id(request_id, v)
    v.raise_if_any()
    try:
        if c.gateway == rules.RAZORPAY:
            razorpay_gateway.check_keys(c.key_id, c.secret_key)
        else:
            stripe_gateway.check_keys(c.secret_key)
    except (TypeError, ValueError, AttributeError) as exc:  # the SDK refuses the key
        raise InvalidArgument.field("gateway_config.secret_key", f"refused by the {c.gateway} library: {exc}") from None
    # Razorpay's calls take the key pair; both are sealed together, the hint is the key id's
    credentials = f"{c.key_id}:{c.secret_key}" if c.gateway == rules.RAZORPAY else c.secret_key
    shown = rules.hint(c.key_id if c.gateway == rules.RAZORPAY else c.secret_key)
    config_id = uuid.uuid4()
    ctx = context.current()
    async with db.unit_of_work(org) as uow:
        if request_id:
            first = await store.config_by_request_id(uow.conn, org, request_id)
            if first is not None:
                return first
        await store.insert_config(uow.conn, org, config_id, {
            "gateway": c.gateway, "nickname": c.nickname,
            "credentials": keyring.seal(credentials.encode(), aad(config_id, "secret_key")),
            "webhook_secret": keyring.seal(c.webhook_secret.encode(), aad(config_id, "webhook_secret")),
            "hint": shown, "test_mode": test_mode, "active": c.active,
            "created_by": ctx.principal.subject if ctx.principal else ""}, request_id or None)
        row = await store.config(uow.conn, org, config_id)
        uow.audit("billing.gateway_config.create", "gateway_config", str(config_id),
                  after={"gateway": c.gateway, "test_mode": test_mode, "hint": row["secret_key_hint"]})
        return row


async def get(db: Database, org: uuid.UUID, config_id: str) -> dict:
    cid = parse_id(config_id, "id")
    async with db.unit_of_work(org) as uow:
        row = await store.config(uow.conn, org, cid)
    if row is None:
        raise NotFound(f"gateway config {config_id} not found")
    return row


async def list_configs(db: Database, org: uuid.UUID) -> list[dict]:
    async with db.unit_of_work(org) as uow:
        return await store.configs(uow.conn, org)


async def delete(db: Database, org: uuid.UUID, config_id: str, given_etag: str) -> dict:
    cid = parse_id(config_id, "id")
    async with db.unit_of_work(org) as uow:
        row = await store.config(uow.conn, org, cid, for_update=True)
        if row is None:
            raise NotFound(f"gateway config {config_id} not found")
        if given_etag:
            check_etag(given_etag, row["version"], "gateway config", "etag")
        await store.soft_delete(uow.conn, org, cid)
        uow.audit("billing.gateway_config.delete", "gateway_config", str(cid))
        return {**row, "active": False}
