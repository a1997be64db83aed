"""python -m services.identity.republish: every active membership is announced again
(identity.member.joined through the outbox), and crm's member replica catches up."""

import uuid

from chassis.db import Database, create_engine
from chassis.settings import ServiceSettings
from services.identity.handlers.replicas import live_organizations, republish_members
from tests.helpers import eventually


async def _replica(admin_db, org_id, user_id):
    return await admin_db.fetchval(
        "SELECT active FROM crm.members WHERE organization_id = $1::uuid AND user_id = $2::uuid", org_id, user_id)


async def _joined_events(admin_db, org_id) -> int:
    return await admin_db.fetchval(
        "SELECT count(*) FROM identity.outbox WHERE tenant_id = $1::uuid AND routing_key = 'identity.member.joined'",
        org_id)


async def test_republish_rebuilds_the_crm_replica_of_active_members_only(stubs, crm_host, admin_db):
    kept = await stubs.sign_up("Replica Org")
    suspended = await stubs.sign_up("Suspended Org")
    for t in (kept, suspended):
        await eventually(lambda t=t: _replica(admin_db, t.org_id, t.user_id), what="the owner in crm's replica")
    # crm lost its replica (say, it was introduced after these members joined) ...
    await admin_db.execute("DELETE FROM crm.members WHERE organization_id = ANY($1::uuid[])",
                           [uuid.UUID(kept.org_id), uuid.UUID(suspended.org_id)])
    # ... and one membership is no longer active.
    await admin_db.execute("UPDATE identity.user_organizations SET status = 'suspended' "
                           "WHERE organization_id = $1::uuid", suspended.org_id)
    before = {t.org_id: await _joined_events(admin_db, t.org_id) for t in (kept, suspended)}

    settings = ServiceSettings()
    admin = Database(create_engine(settings.admin_database_url(), pool_size=1), "identity")
    db = Database(create_engine(settings.app_database_url("identity"), pool_size=1), "identity")
    try:
        ours = [uuid.UUID(kept.org_id), uuid.UUID(suspended.org_id)]
        assert set(ours) <= set(await live_organizations(admin))
        # Republished for our two organizations only: every other test's tenants stay untouched.
        published = await republish_members(db, ours)
    finally:
        await db.dispose()
        await admin.dispose()

    assert published == 1  # the kept owner; the suspended membership is not announced
    assert await _joined_events(admin_db, kept.org_id) == before[kept.org_id] + 1
    assert await _joined_events(admin_db, suspended.org_id) == before[suspended.org_id]
    assert await eventually(lambda: _replica(admin_db, kept.org_id, kept.user_id), what="the replica rebuilt")
    assert await _replica(admin_db, suspended.org_id, suspended.user_id) is None
