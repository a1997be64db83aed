import asyncio


async def test_new_organization_gets_the_default_journey(stubs, admin_db):
    tenant = await stubs.sign_up("Journey Org")
    graph = None
    for _ in range(100):
        graph = await admin_db.fetchval("SELECT graph FROM crm.journeys WHERE organization_id = $1::uuid",
                                        tenant.org_id)
        if graph:
            break
        await asyncio.sleep(0.1)
    assert graph, "identity.organization.created did not reach crm"
    import json

    stages = json.loads(graph)["stages"]
    ids = [s["id"] for s in stages]
    assert ids[0] == "prospect" and len(ids) == len(set(ids))
    for s in stages:
        assert all(t["to"] in ids for t in s["transitions"])
    handled = await admin_db.fetchval(
        "SELECT count(*) FROM crm.inbox WHERE consumer = 'crm.organization-setup'")
    assert handled >= 1
