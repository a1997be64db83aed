"""Another tenant's data is never visible, through the API or through SQL."""

import asyncio
import uuid

import asyncpg
import grpc
import pytest
from givance.crm.v1 import donation_service_pb2 as dpb
from givance.crm.v1 import donor_pb2
from givance.crm.v1 import donor_service_pb2 as pb
from google.protobuf import field_mask_pb2
from sqlalchemy import text

from chassis import migrate
from chassis.db import Database, create_engine
from chassis.settings import ServiceSettings, plain_dsn
from chassis.spec import listed_services
from tests.helpers import eventually, fails, gift, new_donor


async def _donor(stubs, tenant, **kw):
    return (await stubs.donors.CreateDonor(new_donor(**kw), metadata=tenant.md)).donor


async def test_other_tenant_cannot_get_update_or_delete(stubs, tenant, other_tenant):
    donor = await _donor(stubs, tenant, tags=["secret"])
    calls = [
        stubs.donors.GetDonor(pb.GetDonorRequest(id=donor.id), metadata=other_tenant.md),
        stubs.donors.UpdateDonor(pb.UpdateDonorRequest(
            donor=donor_pb2.Donor(id=donor.id, first_name="Mallory"),
            update_mask=field_mask_pb2.FieldMask(paths=["first_name"])), metadata=other_tenant.md),
        stubs.donors.DeleteDonor(pb.DeleteDonorRequest(id=donor.id), metadata=other_tenant.md),
        stubs.donations.RecordDonation(gift(donor.id), metadata=other_tenant.md),
    ]
    for call in calls:
        await fails(call, grpc.StatusCode.NOT_FOUND)
    # and nothing changed for the owner
    got = (await stubs.donors.GetDonor(pb.GetDonorRequest(id=donor.id), metadata=tenant.md)).donor
    assert got.first_name == "Ada" and got.etag == donor.etag and not got.giving_totals


async def test_other_tenant_lists_see_nothing(stubs, tenant, other_tenant):
    donor = await _donor(stubs, tenant, tags=["only-a"], email="a-only@example.org")
    await stubs.donations.RecordDonation(gift(donor.id), metadata=tenant.md)
    for req in (pb.ListDonorsRequest(), pb.ListDonorsRequest(tag="only-a"),
                pb.ListDonorsRequest(email="a-only@example.org")):
        resp = await stubs.donors.ListDonors(req, metadata=other_tenant.md)
        assert list(resp.donors) == [] and resp.next_page_token == ""
    assert not (await stubs.donations.ListDonations(dpb.ListDonationsRequest(), metadata=other_tenant.md)).donations
    assert not (await stubs.donations.ListDonations(dpb.ListDonationsRequest(donor_id=donor.id),
                                                    metadata=other_tenant.md)).donations
    mine = await stubs.donors.ListDonors(pb.ListDonorsRequest(tag="only-a"), metadata=tenant.md)
    assert [d.id for d in mine.donors] == [donor.id]


async def test_tenant_header_not_granted_by_token_is_permission_denied(stubs, tenant, other_tenant):
    md = (("authorization", f"Bearer {tenant.access_token}"), ("x-tenant-id", other_tenant.org_id))
    await fails(stubs.donors.ListDonors(pb.ListDonorsRequest(), metadata=md), grpc.StatusCode.PERMISSION_DENIED)


def _crm_dsn() -> str:
    return plain_dsn(ServiceSettings().app_database_url("crm"))


async def test_raw_sql_without_where_sees_only_its_tenant(stubs, tenant, other_tenant):
    await _donor(stubs, tenant)
    await _donor(stubs, other_tenant)
    conn = await asyncpg.connect(_crm_dsn())  # the service's own role
    try:
        for table in ("crm.donors", "crm.donations", "crm.donor_giving", "crm.journeys"):
            async with conn.transaction():
                await conn.execute("SELECT set_config('app.tenant_id', $1, true)", other_tenant.org_id)
                orgs = await conn.fetch(f"SELECT DISTINCT organization_id FROM {table}")
            assert {str(r["organization_id"]) for r in orgs} <= {other_tenant.org_id}, table
        async with conn.transaction():  # no tenant at all: nothing
            assert await conn.fetchval("SELECT count(*) FROM crm.donors") == 0
        async with conn.transaction():  # writing another tenant's row is refused
            await conn.execute("SELECT set_config('app.tenant_id', $1, true)", other_tenant.org_id)
            with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
                await conn.execute("INSERT INTO crm.donors (id, organization_id) VALUES ($1, $2)",
                                   uuid.uuid4(), uuid.UUID(tenant.org_id))
    finally:
        await conn.close()


async def test_identity_tables_are_tenant_scoped(stubs, tenant, other_tenant):
    conn = await asyncpg.connect(plain_dsn(ServiceSettings().app_database_url("identity")))
    try:
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.tenant_id', $1, true)", other_tenant.org_id)
            orgs = {str(r["id"]) for r in await conn.fetch("SELECT id FROM identity.organizations")}
            members = {str(r["organization_id"]) for r in
                       await conn.fetch("SELECT organization_id FROM identity.user_organizations")}
            tokens = {str(r["organization_id"]) for r in
                      await conn.fetch("SELECT organization_id FROM identity.refresh_tokens")}
        assert orgs == {other_tenant.org_id}
        assert members == {other_tenant.org_id}
        assert tokens == {other_tenant.org_id}
    finally:
        await conn.close()


async def test_every_tenant_table_has_forced_rls_and_roles_are_unprivileged(admin_db):
    """Found in the catalog, not listed here: every service's schema (those givance_owner owns,
    which must be the listed services) and every table in any schema with an organization_id,
    so a new service's tables cannot skip the check."""
    services = listed_services()
    schemas = {r["nspname"] for r in await admin_db.fetch(
        "SELECT n.nspname FROM pg_namespace n JOIN pg_roles o ON o.oid = n.nspowner WHERE o.rolname = $1",
        migrate.OWNER_ROLE)}
    assert schemas == set(services)
    tables = await admin_db.fetch(
        """
        SELECT n.nspname AS schema, c.relname AS table, c.relrowsecurity AS enabled,
               c.relforcerowsecurity AS forced,
               (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND (EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'organization_id'
                       AND NOT a.attisdropped)
               OR (c.relname = 'organizations' AND n.nspname = ANY($1::text[])))
        """, services
    )
    assert len(tables) >= 7
    for t in tables:
        assert t["enabled"] and t["forced"] and t["policies"] >= 1, dict(t)
    for svc in services:
        role = migrate.service_role(svc)
        r = await admin_db.fetchrow("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1", role)
        assert r is not None and not r["rolsuper"] and not r["rolbypassrls"], role
        owned = await admin_db.fetchval(
            "SELECT count(*) FROM pg_class c JOIN pg_roles o ON o.oid = c.relowner WHERE o.rolname = $1", role)
        assert owned == 0, f"{role} owns {owned} relations"
        # each service's role can touch only its own schema
        for other in schemas - {svc}:
            assert not await admin_db.fetchval("SELECT has_schema_privilege($1, $2, 'USAGE')", role, other), \
                (role, other)
        assert await admin_db.fetchval("SELECT has_schema_privilege($1, $2, 'USAGE')", role, svc)


async def _tenant_on_next_checkout(engine) -> tuple[int, str]:
    """Backend pid and app.tenant_id as the next request on the pool would see them."""
    pool = await engine.acquire_pool()
    async with pool.acquire() as conn:
        return await conn.fetchval("SELECT pg_backend_pid()"), \
            (await conn.fetchval("SELECT current_setting('app.tenant_id', true)")) or ""


async def test_failed_or_cancelled_transaction_leaves_no_tenant_on_the_pooled_connection(tenant, admin_db):
    engine = create_engine(ServiceSettings().app_database_url("crm"), pool_size=1)
    db = Database(engine, "crm")
    try:
        pid_before = None
        with pytest.raises(RuntimeError):
            async with db.unit_of_work(uuid.UUID(tenant.org_id)) as uow:
                pid_before = (await uow.conn.execute(text("SELECT pg_backend_pid()"))).scalar()
                assert (await uow.conn.execute(text("SELECT count(*) FROM crm.journeys"))).scalar() >= 0
                raise RuntimeError("handler failed")
        pid, tenant_after = await _tenant_on_next_checkout(engine)
        assert pid == pid_before  # the same pooled connection ...
        assert tenant_after == ""  # ... carries no tenant

        started = asyncio.Future()

        async def slow():
            async with db.unit_of_work(uuid.UUID(tenant.org_id)) as uow:
                started.set_result((await uow.conn.execute(text("SELECT pg_backend_pid()"))).scalar())
                await uow.conn.execute(text("SELECT pg_sleep(5)"))

        task = asyncio.create_task(slow())
        pid = await started
        await eventually(lambda: admin_db.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND state = 'active' AND query LIKE '%pg_sleep%'",
            pid), what="the slow statement to be running")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        _, tenant_after = await _tenant_on_next_checkout(engine)
        assert tenant_after == ""
    finally:
        await engine.dispose()
