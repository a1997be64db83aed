"""Links and codes meant for a user travel sealed for comms, never in clear (outbox rows and the
messages on the bus); identity refuses the published development keys unless told it is
development."""

import uuid

import aio_pika
import pytest
from cryptography.exceptions import InvalidTag
from givance.events.v1 import identity_events_pb2
from givance.identity.v1 import account_service_pb2 as pb
from givance.identity.v1 import membership_service_pb2 as mpb

from chassis import events
from chassis.crypto import DEV_EVENT_SECRET_KEYS, Keyring, generate_key_spec, open_event_secret
from services.identity.settings import IdentitySettings
from tests.helpers import comms_opens, eventually

SECRET_EVENTS = {
    "identity.user.email_verification_requested": (identity_events_pb2.EmailVerificationRequestedEvent,
                                                   "sealed_verify_link"),
    "identity.user.password_reset_requested": (identity_events_pb2.PasswordResetRequestedEvent, "sealed_reset_link"),
    "identity.user.phone_verification_requested": (identity_events_pb2.PhoneVerificationRequestedEvent,
                                                   "sealed_code"),
    "identity.invitation.created": (identity_events_pb2.InvitationCreatedEvent, "sealed_accept_link"),
}


@pytest.fixture(autouse=True)
async def _forget_limits(admin_db):
    await admin_db.execute("DELETE FROM identity.request_limits")
    yield
    await admin_db.execute("DELETE FROM identity.request_limits")


async def test_links_and_codes_are_sealed_in_the_outbox_and_on_the_bus(stubs, tenant, admin_db, env):
    conn = await aio_pika.connect(env["rabbitmq_url"])
    try:
        channel = await conn.channel()
        exchange = await channel.declare_exchange("givance.events", aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(exclusive=True)
        for key in SECRET_EVENTS:
            await queue.bind(exchange, routing_key=key)
        md = tenant.md
        await stubs.accounts.RequestEmailVerification(pb.RequestEmailVerificationRequest(), metadata=md)
        await stubs.accounts.RequestPasswordReset(pb.RequestPasswordResetRequest(email=tenant.email))
        await stubs.accounts.RequestPhoneVerification(pb.RequestPhoneVerificationRequest(phone="+1 650-253-0001"),
                                                      metadata=md)
        await stubs.members.CreateInvitation(mpb.CreateInvitationRequest(
            email=f"invitee-{uuid.uuid4().hex[:6]}@example.org", role="staff"), metadata=md)
        bodies: dict[str, bytes] = {}

        async def drained():
            while (message := await queue.get(no_ack=True, fail=False)) is not None:
                bodies[message.routing_key] = message.body
            return len(bodies) == len(SECRET_EVENTS)

        await eventually(drained, what="the four events on the bus")
    finally:
        await conn.close()
    for key, body in bodies.items():
        message_type, field = SECRET_EVENTS[key]
        env_ = events.parse(body)
        payload = events.unpack(env_, message_type)
        secret = comms_opens(key, env_.aggregate_id, getattr(payload, field))  # comms can open it
        row = await admin_db.fetchval("SELECT body FROM identity.outbox WHERE event_id = $1", uuid.UUID(env_.id))
        token = secret.rsplit("token=", 1)[-1]
        assert len(token) >= 6
        assert token.encode() not in body and token.encode() not in bytes(row), key
        # the sealed value opens only for its event: another aggregate or another key fails
        with pytest.raises(InvalidTag):
            open_event_secret(Keyring(DEV_EVENT_SECRET_KEYS), key, str(uuid.uuid4()), getattr(payload, field))
        with pytest.raises(ValueError):
            open_event_secret(Keyring(generate_key_spec("other")), key, env_.aggregate_id, getattr(payload, field))


def test_identity_refuses_the_published_development_keys_unless_allowed(monkeypatch):
    monkeypatch.delenv("IDENTITY_ALLOW_DEV_KEYS", raising=False)
    with pytest.raises(RuntimeError, match="IDENTITY_ENCRYPTION_KEYS, IDENTITY_EVENT_SECRET_KEYS"):
        IdentitySettings().refuse_dev_keys()
    # a rotation that keeps the development key listed (to open old values) is refused too
    own = generate_key_spec("k1")
    with pytest.raises(RuntimeError, match="IDENTITY_EVENT_SECRET_KEYS"):
        IdentitySettings(encryption_keys=own, event_secret_keys=f"{generate_key_spec('e1')},{DEV_EVENT_SECRET_KEYS}"
                         ).refuse_dev_keys()
    IdentitySettings(encryption_keys=own, event_secret_keys=generate_key_spec("e1")).refuse_dev_keys()
    monkeypatch.setenv("IDENTITY_ALLOW_DEV_KEYS", "1")
    IdentitySettings().refuse_dev_keys()  # development: a warning only


async def test_identity_does_not_start_with_the_development_keys(monkeypatch, env):
    from chassis.spec import load

    monkeypatch.delenv("IDENTITY_ALLOW_DEV_KEYS", raising=False)
    spec = load("identity")
    with pytest.raises(RuntimeError, match="published development key"):
        await spec.build(spec.settings(port=0))
