"""billing's fixtures: its own Database (its role, RLS on), a platform operator, the webhook port."""

from __future__ import annotations

import uuid

import pytest
from givance.billing.v1 import subscription_service_pb2 as spb
from givance.identity.v1 import identity_service_pb2 as id_pb

from chassis.db import Database, create_engine
from chassis.settings import ServiceSettings
from services.billing.api.webhooks import WebhookServer
from tests.conftest import PASSWORD, Tenant
from tests.helpers import eventually


@pytest.fixture(scope="session")
async def billing_db(env):
    db = Database(create_engine(ServiceSettings().app_database_url("billing"), pool_size=4), "billing")
    yield db
    await db.dispose()


@pytest.fixture(scope="session")
async def webhook_port(billing_host) -> int:
    (server,) = [w for w in billing_host.workers if isinstance(w, WebhookServer)]
    return await eventually(lambda: server.port, what="the webhook host to listen")


async def subscribed(stubs, tenant: Tenant):
    """The tenant's subscription, once identity.organization.created has started the trial."""

    async def read():
        try:
            return (await stubs.subscriptions.GetSubscription(spb.GetSubscriptionRequest(),
                                                              metadata=tenant.md)).subscription
        except Exception:
            return None

    return await eventually(read, what="the trial subscription")


@pytest.fixture
async def operator(stubs, admin_db):
    """A platform operator (flagged directly, as tests/identity do), signed in: platform.* in the token."""
    t = await stubs.sign_up("Platform Ops")
    await admin_db.execute("INSERT INTO identity.platform_operators (user_id, permissions, granted_by) "
                           "VALUES ($1, '{platform.*}', 'test')", uuid.UUID(t.user_id))
    login = await stubs.identity.Login(id_pb.LoginRequest(email=t.email, password=PASSWORD, organization_id=t.org_id))
    yield Tenant(org_id=t.org_id, user_id=t.user_id, email=t.email, access_token=login.tokens.access_token,
                 refresh_token=login.tokens.refresh_token)
    await admin_db.execute("DELETE FROM identity.platform_operators WHERE user_id = $1", uuid.UUID(t.user_id))


WHSEC = "whsec_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6"
SK = "sk_test_" + "51AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"


async def due(billing_db, tenant: Tenant, at, *, charger=None, policy=None) -> int:
    """Runs the tenant's due actions as the scheduler would at `at` (the controllable clock)."""
    from services.billing.handlers.scheduler import Policy, run_due
    from services.billing.providers.platform_payments import DevelopmentCharger

    return await run_due(billing_db, charger or DevelopmentCharger(), at, policy or Policy(),
                         only=uuid.UUID(tenant.org_id))


def signed(payload: dict | bytes, secret: str, timestamp: int | None = None) -> tuple[bytes, dict]:
    """A body and headers as Stripe sends them (services.billing.providers.stripe_gateway.sign)."""
    import json
    import time

    from services.billing.providers.stripe_gateway import sign

    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return body, {"Stripe-Signature": sign(body, secret, int(time.time()) if timestamp is None else timestamp),
                  "Content-Type": "application/json"}


def gift_event(event_id: str, payment_id: str, amount_cents: int, email: str, project_id: str = "",
               name: str = "Grace Hopper") -> dict:
    return {"id": event_id, "object": "event", "type": "payment_intent.succeeded", "created": 1764547200,
            "livemode": False, "api_version": "2024-06-20",
            "data": {"object": {"id": payment_id, "object": "payment_intent", "amount": amount_cents,
                                "amount_received": amount_cents, "currency": "usd", "status": "succeeded",
                                "receipt_email": email,
                                "metadata": {"kind": "donation", "project_id": project_id, "donor_name": name}}}}


def refund_event(event_id: str, payment_id: str, refund_id: str, amount_cents: int, total_cents: int) -> dict:
    return {"id": event_id, "object": "event", "type": "charge.refunded", "created": 1764550800, "livemode": False,
            "data": {"object": {"id": f"ch_{payment_id[3:]}", "object": "charge", "payment_intent": payment_id,
                                "amount": total_cents, "amount_refunded": amount_cents, "currency": "usd",
                                "refunds": {"data": [{"id": refund_id, "amount": amount_cents}]}}}}


async def gateway_config(stubs, tenant: Tenant, webhook_secret: str = WHSEC):
    from givance.billing.v1 import gateway_config_pb2
    from givance.billing.v1 import gateway_config_service_pb2 as gpb

    return (await stubs.gateway_configs.CreateGatewayConfig(gpb.CreateGatewayConfigRequest(
        gateway_config=gateway_config_pb2.GatewayConfig(gateway=gateway_config_pb2.GATEWAY_STRIPE, nickname="Main",
                                                        secret_key=SK, webhook_secret=webhook_secret)),
        metadata=tenant.md)).gateway_config


async def publish_event(event_type: str, payload, tenant: Tenant, event_id: str | None = None) -> str:
    """An event on the events exchange as the operator's broker user would publish it (a stand-in
    for a service not in this suite yet, e.g. comms.email.sent)."""
    import os

    import aio_pika

    from chassis import events

    env = events.envelope(event_type, payload, uuid.UUID(tenant.org_id), "test", "test", event_id=event_id)
    conn = await aio_pika.connect_robust(os.environ["RABBITMQ_URL"])
    try:
        channel = await conn.channel()
        exchange = await channel.get_exchange("givance.events")
        await exchange.publish(aio_pika.Message(env.SerializeToString(), message_id=env.id,
                                                headers={events.TENANT_HEADER: tenant.org_id}),
                               routing_key=event_type)
    finally:
        await conn.close()
    return env.id


def error_info(err):
    from google.rpc import error_details_pb2, status_pb2

    for key, value in err.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            for detail in status_pb2.Status.FromString(value).details:
                if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                    return info
    return None
