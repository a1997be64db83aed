"""A new organization gets the default donor journey: identity publishes
identity.organization.created, and crm's organization-setup consumer seeds the journey graph
(a read before the consumer ran already answers with the default)."""

import json

from givance.crm.v1 import journey_service_pb2 as pb

from services.crm.domain.journeys import DEFAULT_JOURNEY
from tests.helpers import eventually

DEFAULT_IDS = [s["id"] for s in DEFAULT_JOURNEY["stages"]]


async def test_a_new_organization_reads_the_default_journey(stubs):
    tenant = await stubs.sign_up("Fresh Journey Org")
    j = (await stubs.journeys.GetJourney(pb.GetJourneyRequest(), metadata=tenant.md)).journey
    # whether or not the seeding consumer ran yet, it is the default journey at version 1
    assert [s.id for s in j.stages] == DEFAULT_IDS and j.etag == 'W/"1"'
    first = j.stages[1]
    assert first.name == "First contact" and [t.to for t in first.transitions] == ["cultivation", "first_gift"]
    assert first.transitions[1].condition == "Donor gave"


async def test_the_organization_setup_consumer_seeds_the_default_journey(stubs, admin_db):
    tenant = await stubs.sign_up("Journey Org")
    created = await admin_db.fetchval(
        "SELECT event_id FROM identity.outbox WHERE routing_key = 'identity.organization.created' "
        "AND tenant_id = $1::uuid", tenant.org_id)
    assert created, "sign-up published no identity.organization.created"
    # This organization's event, handled once by the consumer (its inbox row commits with the graph).
    await eventually(lambda: admin_db.fetchval(
        "SELECT count(*) = 1 FROM crm.inbox WHERE consumer = 'crm.organization-setup' AND event_id = $1", created),
        what="crm's organization-setup consumer to handle the organization's event")
    graph = await admin_db.fetchval("SELECT graph FROM crm.journeys WHERE organization_id = $1::uuid", tenant.org_id)
    assert graph, "the consumer handled the event but seeded no journey"
    stages = json.loads(graph)["stages"]
    ids = [s["id"] for s in stages]
    assert ids == DEFAULT_IDS and len(ids) == len(set(ids))
    for s in stages:
        assert all(t["to"] in ids for t in s["transitions"])
