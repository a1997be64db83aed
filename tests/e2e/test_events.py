"""Events end to end: RecordDonation through crm's gRPC API, crm's own outbox relay (the
session's crm_host) and the real RabbitMQ, to a consumer of our own on the crm schema,
connected as crm's unprivileged role."""

from __future__ import annotations

import uuid

import aio_pika
import pytest
from givance.events.v1 import crm_events_pb2, event_pb2
from sqlalchemy import text

from chassis import events
from chassis.consumer import Consumer
from chassis.db import Database, UnitOfWork, create_engine
from chassis.settings import ServiceSettings
from tests.chassis.support import delete_consumer_topology, unique
from tests.helpers import eventually, gift, new_donor, usd

ROUTING_KEY = "crm.donation.recorded"


class Received:
    def __init__(self) -> None:
        self.events: list[tuple[event_pb2.Event, crm_events_pb2.DonationRecordedEvent, dict | None]] = []

    async def __call__(self, uow: UnitOfWork, event: event_pb2.Event) -> None:
        payload = events.unpack(event, crm_events_pb2.DonationRecordedEvent)
        # The unit of work is the event's tenant's: row-level security shows its donation.
        row = (await uow.conn.execute(
            text("SELECT donor_id::text AS donor_id, amount, currency FROM crm.donations WHERE id = :id"),
            {"id": payload.donation_id})).mappings().first()
        self.events.append((event, payload, dict(row) if row is not None else None))

    def for_donation(self, donation_id: str) -> list:
        return [e for e in self.events if e[1].donation_id == donation_id]


@pytest.fixture
async def crm_consumer(env, crm_host):
    """Start a Consumer (crm schema, crm role) on its own queue; stop and remove it after."""
    db = Database(create_engine(ServiceSettings().app_database_url("crm"), pool_size=2), "crm")
    started: list[Consumer] = []

    async def start(handler, **kw) -> Consumer:
        consumer = Consumer(db, env["rabbitmq_url"], ServiceSettings().events_exchange,
                            unique("test.e2e.donations"), [ROUTING_KEY], handler, **kw)
        await consumer.start()
        started.append(consumer)
        return consumer

    yield start
    conn = await aio_pika.connect(env["rabbitmq_url"], timeout=10)
    try:
        channel = await conn.channel()
        for consumer in started:
            await consumer.stop()
            await delete_consumer_topology(channel, consumer.queue_name)
    finally:
        await conn.close()
        await db.dispose()


async def test_a_recorded_donation_reaches_its_consumer(stubs, tenant, other_tenant, crm_consumer, admin_db):
    received = Received()
    consumer = await crm_consumer(received)
    recorded = {}
    for t, amount in ((tenant, usd(250, 500_000_000)), (other_tenant, usd(40))):
        donor = (await stubs.donors.CreateDonor(new_donor(), metadata=t.md)).donor
        donation = (await stubs.donations.RecordDonation(gift(donor.id, amount), metadata=t.md)).donation
        recorded[donation.id] = (t, donor, amount)

    await eventually(lambda: all(received.for_donation(d) for d in recorded), what="both donation events")
    for donation_id, (t, donor, amount) in recorded.items():
        [(env_, payload, row)] = received.for_donation(donation_id)
        assert env_.type == ROUTING_KEY
        assert env_.tenant_id == t.org_id
        assert env_.aggregate_type == "donor" and env_.aggregate_id == donor.id
        assert payload.donor_id == donor.id
        assert (payload.amount.currency_code, payload.amount.units, payload.amount.nanos) == (
            amount.currency_code, amount.units, amount.nanos)
        assert row is not None, "the consumer's unit of work did not see the tenant's donation"
        assert row["donor_id"] == donor.id
        # Handled once, recorded in crm's inbox under this consumer; the outbox row is marked sent.
        assert await admin_db.fetchval(
            "SELECT count(*) FROM crm.inbox WHERE consumer = $1 AND event_id = $2",
            consumer.queue_name, uuid.UUID(env_.id)) == 1
        # Marked sent once the broker confirmed, which may be a moment after the delivery.
        await eventually(lambda event_id=uuid.UUID(env_.id): admin_db.fetchval(
            "SELECT published_at IS NOT NULL FROM crm.outbox WHERE event_id = $1", event_id),
            what="the outbox row marked sent")
    assert consumer.handled >= len(recorded)


async def test_a_retried_record_donation_publishes_one_event(stubs, tenant, crm_consumer, admin_db):
    received = Received()
    consumer = await crm_consumer(received, prefetch=1)
    donor = (await stubs.donors.CreateDonor(new_donor(), metadata=tenant.md)).donor
    request_id = f"req-{uuid.uuid4()}"
    first = (await stubs.donations.RecordDonation(gift(donor.id, request_id=request_id), metadata=tenant.md)).donation
    again = (await stubs.donations.RecordDonation(gift(donor.id, request_id=request_id), metadata=tenant.md)).donation
    assert again.id == first.id
    # A later donation: events leave in outbox order and this consumer takes one at a time,
    # so once this one is handled, a repeat of the first would have been handled too.
    sentinel = (await stubs.donations.RecordDonation(gift(donor.id), metadata=tenant.md)).donation
    await eventually(lambda: received.for_donation(sentinel.id), what="the later donation's event")

    assert len(received.for_donation(first.id)) == 1
    assert [e[1].donation_id for e in received.events if e[0].tenant_id == tenant.org_id] == [first.id, sentinel.id]
    assert await admin_db.fetchval(
        "SELECT count(*) FROM crm.outbox WHERE routing_key = $1 AND aggregate_id = $2", ROUTING_KEY, donor.id) == 2
    assert consumer.handled >= 2
