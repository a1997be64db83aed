"""The audit trail: crm's writes and financial reads, identity's own actions, ListActivity's
filters and paging, tenancy, redelivery, and the partitions' row-level security."""

import uuid

import aio_pika
import grpc
import pytest
from givance.crm.v1 import donation_service_pb2 as dnpb
from givance.crm.v1 import donor_pb2
from givance.crm.v1 import donor_service_pb2 as dpb
from givance.events.v1 import audit_events_pb2
from givance.identity.v1 import audit_service_pb2 as apb
from givance.identity.v1 import identity_service_pb2 as pb
from givance.identity.v1 import session_service_pb2 as spb
from google.protobuf import field_mask_pb2, timestamp_pb2
from google.protobuf.json_format import MessageToDict

from chassis import events
from tests.helpers import eventually, fails, field_violations, gift, new_donor


@pytest.fixture
def audit(stubs):
    return stubs.audit


@pytest.fixture
def sessions(stubs):
    return stubs.sessions


async def _entries(audit, tenant, **filters) -> list[apb.ActivityEntry]:
    out, token = [], ""
    while True:
        resp = await audit.ListActivity(apb.ListActivityRequest(page_token=token, **filters), metadata=tenant.md)
        out += resp.entries
        token = resp.next_page_token
        if not token:
            return out


async def _until(audit, tenant, count: int, **filters) -> list[apb.ActivityEntry]:
    """Waits until `count` entries match (they travel outbox -> bus -> identity's consumer)."""
    async def enough():
        found = await _entries(audit, tenant, **filters)
        return found if len(found) >= count else None

    return await eventually(enough, what=f"{count} audit entries for {filters}")


def _d(struct) -> dict:
    return MessageToDict(struct)


async def test_crm_donor_writes_and_financial_reads_are_audited_with_before_and_after(stubs, audit, tenant):
    donor = (await stubs.donors.CreateDonor(new_donor(email="ada@example.org", tags=["vip"]),
                                            metadata=tenant.md)).donor
    updated = (await stubs.donors.UpdateDonor(dpb.UpdateDonorRequest(
        donor=donor_pb2.Donor(id=donor.id, first_name="Grace", etag=donor.etag),
        update_mask=field_mask_pb2.FieldMask(paths=["first_name"])), metadata=tenant.md)).donor
    await stubs.donors.GetDonor(dpb.GetDonorRequest(id=donor.id), metadata=tenant.md)
    gift_row = (await stubs.donations.RecordDonation(gift(donor.id), metadata=tenant.md)).donation
    await stubs.donations.ListDonations(dnpb.ListDonationsRequest(donor_id=donor.id), metadata=tenant.md)
    await stubs.donors.DeleteDonor(dpb.DeleteDonorRequest(id=donor.id, etag=updated.etag), metadata=tenant.md)

    async def the_users_five():  # comms' thank-you reads the donor too, as its own service principal
        found = [e for e in await _entries(audit, tenant, resource_id=donor.id) if e.actor_kind != "platform_service"]
        return found if len(found) >= 5 else None

    entries = await eventually(the_users_five, what="the user's five audit entries")
    by_action = {e.action: e for e in entries}
    assert [e.action for e in entries] == [
        "crm.donor.delete", "crm.donation.list", "crm.donor.read", "crm.donor.update", "crm.donor.create"]
    times = [e.occur_time.ToDatetime() for e in entries]
    assert times == sorted(times, reverse=True)  # newest first

    created = by_action["crm.donor.create"]
    assert not created.HasField("before")
    assert _d(created.after)["first_name"] == "Ada" and _d(created.after)["email"] == "ada@example.org"
    assert _d(created.after)["tags"] == ["vip"]
    change = by_action["crm.donor.update"]
    assert _d(change.before) == {"first_name": "Ada"} and _d(change.after) == {"first_name": "Grace"}
    deleted = by_action["crm.donor.delete"]
    assert _d(deleted.before)["first_name"] == "Grace" and not deleted.HasField("after")
    read = by_action["crm.donor.read"]
    assert not read.HasField("before") and not read.HasField("after")
    for e in entries:
        assert (e.actor_id, e.actor_kind, e.service, e.resource_type) == (tenant.user_id, "user", "crm", "donor")
        assert e.request_id and e.ip_address == "127.0.0.1" and e.id

    recorded = (await _until(audit, tenant, 1, action="crm.donation.record", resource_id=gift_row.id))[0]
    assert recorded.resource_type == "donation"
    after = _d(recorded.after)
    assert after["donor_id"] == donor.id and after["amount"] == "100.00" and after["currency"] == "USD"


async def test_identity_audits_its_own_session_and_service_account_actions(stubs, audit, sessions, tenant):
    created = await sessions.CreateServiceAccount(spb.CreateServiceAccountRequest(
        name="auditor", permissions=["crm.donors.read"]), metadata=tenant.md)
    account = created.service_account
    await sessions.DeleteServiceAccount(spb.DeleteServiceAccountRequest(id=account.id), metadata=tenant.md)
    entries = await _until(audit, tenant, 2, resource_type="service_account", resource_id=account.id)
    assert [e.action for e in entries] == ["identity.service_account.delete", "identity.service_account.create"]
    assert all(e.service == "identity" and e.actor_id == tenant.user_id for e in entries)
    assert _d(entries[1].after) == {"name": "auditor", "client_id": account.client_id,
                                    "permissions": ["crm.donors.read"]}
    assert created.client_secret not in str(entries)


async def test_list_activity_filters_and_pages(stubs, audit, sessions, tenant):
    donor = (await stubs.donors.CreateDonor(new_donor(), metadata=tenant.md)).donor
    etag = donor.etag
    for name in ("B", "C", "D"):
        etag = (await stubs.donors.UpdateDonor(dpb.UpdateDonorRequest(
            donor=donor_pb2.Donor(id=donor.id, first_name=name, etag=etag),
            update_mask=field_mask_pb2.FieldMask(paths=["first_name"])), metadata=tenant.md)).donor.etag
    await stubs.donors.GetDonor(dpb.GetDonorRequest(id=donor.id), metadata=tenant.md)
    # a read by a service account: another actor, of another kind
    sa = await sessions.CreateServiceAccount(spb.CreateServiceAccountRequest(
        name="reader", permissions=["crm.donors.read"]), metadata=tenant.md)
    token = (await stubs.identity.IssueServiceToken(pb.IssueServiceTokenRequest(
        client_id=sa.service_account.client_id, client_secret=sa.client_secret))).access_token
    await stubs.donors.GetDonor(dpb.GetDonorRequest(id=donor.id), metadata=(
        ("authorization", f"Bearer {token}"), ("x-tenant-id", tenant.org_id)))

    everything = await _until(audit, tenant, 6, resource_type="donor", resource_id=donor.id)
    assert len(everything) == 6

    # paging: every entry once, in the same order, whatever the page size
    for size in (1, 2, 4):
        seen, page_token, pages = [], "", 0
        while True:
            resp = await audit.ListActivity(apb.ListActivityRequest(
                resource_type="donor", resource_id=donor.id, page_size=size, page_token=page_token),
                metadata=tenant.md)
            assert len(resp.entries) <= size
            seen += [e.id for e in resp.entries]
            pages += 1
            page_token = resp.next_page_token
            if not page_token:
                break
        assert seen == [e.id for e in everything]
        assert pages == -(-6 // size)  # no empty last page

    async def ids(**filters):
        return [e.id for e in await _entries(audit, tenant, resource_id=donor.id, **filters)]

    updates = [e.id for e in everything if e.action == "crm.donor.update"]
    assert await ids(action="crm.donor.update") == updates and len(updates) == 3
    assert await ids(action="crm.donor.") == [e.id for e in everything]  # a prefix
    assert await ids(action="crm.donor") == []  # exact unless it ends with "."
    assert await ids(action="crm.") == [e.id for e in everything]
    service_reads = await _entries(audit, tenant, actor_id=sa.service_account.id)
    assert [(e.action, e.actor_kind, e.resource_id) for e in service_reads] == [
        ("crm.donor.read", "service", donor.id)]
    assert await ids(actor_id=tenant.user_id) == [e.id for e in everything if e.actor_id == tenant.user_id]
    assert await ids(resource_type="donation") == []
    # time range: start inclusive, end exclusive
    pivot = everything[2].occur_time
    assert await ids(start_time=pivot) == [e.id for e in everything[:3]]
    assert await ids(end_time=pivot) == [e.id for e in everything[3:]]
    later = timestamp_pb2.Timestamp(seconds=everything[0].occur_time.seconds + 1)
    assert await ids(start_time=everything[4].occur_time, end_time=later) == [e.id for e in everything[:5]]

    # a page token belongs to its filters
    first = await audit.ListActivity(apb.ListActivityRequest(resource_id=donor.id, page_size=1), metadata=tenant.md)
    e = await fails(audit.ListActivity(apb.ListActivityRequest(resource_id=donor.id, action="crm.donor.",
                                                              page_token=first.next_page_token), metadata=tenant.md))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "page_token" in field_violations(e)


async def test_another_tenant_sees_none_of_it(stubs, audit, tenant, other_tenant):
    donor = (await stubs.donors.CreateDonor(new_donor(), metadata=tenant.md)).donor
    await stubs.donors.GetDonor(dpb.GetDonorRequest(id=donor.id), metadata=tenant.md)
    await _until(audit, tenant, 2, resource_id=donor.id)
    assert await _entries(audit, other_tenant, resource_id=donor.id) == []
    theirs = await _entries(audit, other_tenant)
    assert all(e.actor_id != tenant.user_id and e.resource_id != donor.id for e in theirs)
    # and the permission is checked: a token of one tenant cannot read the other's trail
    e = await fails(audit.ListActivity(apb.ListActivityRequest(), metadata=(
        ("authorization", f"Bearer {other_tenant.access_token}"), ("x-tenant-id", tenant.org_id))))
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize(("request_kw", "field"), [
    ({"page_size": -1}, "page_size"),
    ({"page_token": "not a token"}, "page_token"),
    ({"actor_id": "x" * 201}, "actor_id"),
    ({"action": "x" * 201}, "action"),
    ({"resource_type": "x" * 201}, "resource_type"),
    ({"resource_id": "x" * 201}, "resource_id"),
    ({"start_time": timestamp_pb2.Timestamp(seconds=100), "end_time": timestamp_pb2.Timestamp(seconds=50)},
     "end_time"),
    ({"start_time": timestamp_pb2.Timestamp(seconds=10, nanos=-1)}, "start_time"),
    ({"end_time": timestamp_pb2.Timestamp(seconds=10**12)}, "end_time"),
])
async def test_list_activity_bad_input_names_the_field(audit, tenant, request_kw, field):
    e = await fails(audit.ListActivity(apb.ListActivityRequest(**request_kw), metadata=tenant.md))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and field in field_violations(e)


async def test_a_redelivered_event_is_recorded_once_and_the_publisher_is_the_routing_key(
        env, audit, tenant, admin_db, identity_host):
    resource = uuid.uuid4().hex
    payload = audit_events_pb2.AuditRecordedEvent(actor_id="someone", actor_kind="user", action="crm.donor.read",
                                                  resource_type="donor", resource_id=resource, service="identity")
    env_msg = events.envelope("crm.audit.recorded", payload, uuid.UUID(tenant.org_id), "donor", resource)
    marker = events.envelope("crm.audit.recorded", audit_events_pb2.AuditRecordedEvent(
        action="crm.donor.read", resource_type="donor", resource_id=resource + "-marker"),
        uuid.UUID(tenant.org_id), "donor", resource)
    conn = await aio_pika.connect(env["rabbitmq_url"])
    try:
        channel = await conn.channel(publisher_confirms=True)
        exchange = await channel.get_exchange("givance.events")
        for e in (env_msg, env_msg, marker):
            await exchange.publish(aio_pika.Message(body=e.SerializeToString(), message_id=e.id),
                                   routing_key="crm.audit.recorded")
    finally:
        await conn.close()
    await _until(audit, tenant, 1, resource_id=resource + "-marker")
    entries = await _until(audit, tenant, 1, resource_id=resource)
    assert len(entries) == 1 and entries[0].service == "crm"  # not what the body claimed
    assert entries[0].occur_time == env_msg.occur_time
    assert await admin_db.fetchval("SELECT count(*) FROM identity.activity_logs WHERE event_id = $1",
                                   uuid.UUID(env_msg.id)) == 1


async def test_every_activity_partition_has_row_level_security_enabled_and_forced(admin_db, identity_host):
    from datetime import UTC, date, datetime

    rows = await admin_db.fetch(
        "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, "
        "(SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies "
        "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'identity.activity_logs'::regclass")
    names = {r["relname"] for r in rows}
    assert "activity_logs_default" in names and len(rows) > 3
    for r in rows:
        assert r["relrowsecurity"] and r["relforcerowsecurity"] and r["policies"] >= 1, r["relname"]
    parent = await admin_db.fetchrow("SELECT relrowsecurity, relforcerowsecurity FROM pg_class "
                                     "WHERE oid = 'identity.activity_logs'::regclass")
    assert parent["relrowsecurity"] and parent["relforcerowsecurity"]
    # partition maintenance keeps this month and the next two
    today = datetime.now(UTC).date()
    for i in range(3):
        m = date(today.year + (today.month - 1 + i) // 12, (today.month - 1 + i) % 12 + 1, 1)
        assert f"activity_logs_{m:%Y_%m}" in names


async def test_partition_maintenance_creates_missing_months_with_row_level_security(identity_host, admin_db):
    from datetime import date

    from services.identity.handlers import audit as audit_handlers

    db = identity_host.registrations[0].servicer.deps.db
    # far enough ahead that the migration did not make it
    await audit_handlers.ensure_partitions(db, today=date(2099, 11, 15))
    rows = await admin_db.fetch(
        "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
        "WHERE relname IN ('activity_logs_2099_11', 'activity_logs_2099_12', 'activity_logs_2100_01')")
    assert len(rows) == 3 and all(r["relrowsecurity"] and r["relforcerowsecurity"] for r in rows)
    await audit_handlers.ensure_partitions(db, today=date(2099, 11, 15))  # again: nothing to do
