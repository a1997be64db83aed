"""Donor lists: static members and counts, dynamic filters, paging, bad input, tenancy, merges."""

import uuid

import asyncpg
import grpc
import pytest
from givance.crm.v1 import donor_list_pb2 as lpb
from givance.crm.v1 import donor_list_service_pb2 as pb
from givance.crm.v1 import donor_pb2
from givance.crm.v1 import donor_service_pb2 as dpb
from google.protobuf import field_mask_pb2, struct_pb2
from google.type import date_pb2

from chassis.settings import ServiceSettings, plain_dsn
from services.identity.domain import roles
from tests.helpers import day, error_reason, fails, field_violations, gift, invalid, new_donor, usd

STATIC, DYNAMIC = lpb.DONOR_LIST_TYPE_STATIC, lpb.DONOR_LIST_TYPE_DYNAMIC


@pytest.fixture
def lists(stubs):
    return stubs.donor_lists




def _new(request_id="", **kw):
    kw.setdefault("name", "Major donors")
    return pb.CreateDonorListRequest(donor_list=lpb.DonorList(**kw), request_id=request_id)


async def _create(lists, tenant, **kw):
    return (await lists.CreateDonorList(_new(**kw), metadata=tenant.md)).donor_list


async def _get(lists, tenant, list_id):
    return (await lists.GetDonorList(pb.GetDonorListRequest(id=list_id), metadata=tenant.md)).donor_list


async def _donor(stubs, tenant, **kw):
    return (await stubs.donors.CreateDonor(new_donor(**kw), metadata=tenant.md)).donor


def _add(lists, tenant, list_id, ids):
    return lists.AddDonorListMembers(pb.AddDonorListMembersRequest(list_id=list_id, donor_ids=ids), metadata=tenant.md)


def _remove(lists, tenant, list_id, ids):
    return lists.RemoveDonorListMembers(pb.RemoveDonorListMembersRequest(list_id=list_id, donor_ids=ids),
                                        metadata=tenant.md)


def _update(lists, tenant, donor_list, paths):
    return lists.UpdateDonorList(pb.UpdateDonorListRequest(
        donor_list=donor_list, update_mask=field_mask_pb2.FieldMask(paths=paths)), metadata=tenant.md)


async def _members(lists, tenant, list_id, page_size=0):
    ids, token = [], ""
    while True:
        resp = await lists.ListDonorListMembers(
            pb.ListDonorListMembersRequest(list_id=list_id, page_size=page_size, page_token=token), metadata=tenant.md)
        ids += [d.id for d in resp.donors]
        token = resp.next_page_token
        if not token:
            return ids


async def _dynamic(lists, tenant, **filter_kw):
    return await _create(lists, tenant, type=DYNAMIC, filter=lpb.DonorListFilter(**filter_kw))


async def _written(admin_db, org_id):
    return await admin_db.fetchrow(
        "SELECT (SELECT count(*) FROM crm.donor_lists WHERE organization_id = $1::uuid) AS lists,"
        " (SELECT coalesce(sum(version), 0) FROM crm.donor_lists WHERE organization_id = $1::uuid) AS versions,"
        " (SELECT coalesce(sum(donor_count), 0) FROM crm.donor_lists WHERE organization_id = $1::uuid) AS counts,"
        " (SELECT count(*) FROM crm.donor_list_members WHERE organization_id = $1::uuid) AS members,"
        " (SELECT count(*) FROM crm.outbox WHERE tenant_id = $1::uuid"
        " AND routing_key <> 'crm.audit.batch_recorded') AS outbox", org_id)


# -- create, get, list, update, delete ---------------------------------------------------------------


async def test_create_get_and_retry_with_request_id(lists, tenant, admin_db):
    first = await _create(lists, tenant, description=" Top givers ", request_id="r-1")
    assert first.type == STATIC and first.donor_count == 0 and first.description == "Top givers"
    assert first.organization_id == tenant.org_id and first.etag and not first.HasField("filter")
    again = await _create(lists, tenant, name="Something else", request_id="r-1")
    assert again.id == first.id and again.name == "Major donors"
    assert await _get(lists, tenant, first.id) == first
    audited = await admin_db.fetchval("SELECT count(*) FROM crm.outbox WHERE aggregate_id = $1 "
                                      "AND routing_key = 'crm.audit.recorded'", first.id)
    assert audited == 1  # the retry created nothing, so it audited nothing either


@pytest.mark.parametrize(("kw", "field"), [
    ({"name": "  "}, "donor_list.name"),
    ({"name": "x" * 201}, "donor_list.name"),
    ({"description": "x" * 20_001}, "donor_list.description"),
    ({"type": 9}, "donor_list.type"),
    ({"filter": lpb.DonorListFilter(tags=["a"])}, "donor_list.filter"),
    ({"type": DYNAMIC, "filter": lpb.DonorListFilter(tags=["", "a"])}, "donor_list.filter.tags[0]"),
    ({"type": DYNAMIC, "filter": lpb.DonorListFilter(journey_stages=[" "])}, "donor_list.filter.journey_stages[0]"),
    ({"type": DYNAMIC, "filter": lpb.DonorListFilter(min_lifetime_giving=usd(5, -1))},
     "donor_list.filter.min_lifetime_giving"),
    ({"type": DYNAMIC, "filter": lpb.DonorListFilter(min_lifetime_giving=usd(-5))},
     "donor_list.filter.min_lifetime_giving"),
    ({"type": DYNAMIC, "filter": lpb.DonorListFilter(max_lifetime_giving=usd(5, currency="usd"))},
     "donor_list.filter.max_lifetime_giving.currency_code"),
    ({"type": DYNAMIC, "filter": lpb.DonorListFilter(min_lifetime_giving=usd(50), max_lifetime_giving=usd(10))},
     "donor_list.filter.max_lifetime_giving"),
    ({"type": DYNAMIC, "filter": lpb.DonorListFilter(last_gift_before=date_pb2.Date(year=2026, month=2, day=30))},
     "donor_list.filter.last_gift_before"),
    ({"type": DYNAMIC, "filter": lpb.DonorListFilter(last_gift_before=day(2026, 1, 1),
                                                     last_gift_after=day(2026, 2, 1))},
     "donor_list.filter.last_gift_after"),
    ({"type": DYNAMIC, "filter": lpb.DonorListFilter(country="USA")}, "donor_list.filter.country"),
    ({"type": DYNAMIC, "filter": lpb.DonorListFilter(custom_fields=[lpb.CustomFieldEquals(value="x")])},
     "donor_list.filter.custom_fields[0].key"),
])
async def test_create_rejects_bad_input_and_writes_nothing(lists, tenant, admin_db, kw, field):
    before = await _written(admin_db, tenant.org_id)
    await invalid(lists.CreateDonorList(_new(**kw), metadata=tenant.md), field)
    assert await _written(admin_db, tenant.org_id) == before


async def test_create_rejects_a_long_request_id(lists, tenant, admin_db):
    before = await _written(admin_db, tenant.org_id)
    await invalid(lists.CreateDonorList(_new(request_id="r" * 101), metadata=tenant.md), "request_id")
    assert await _written(admin_db, tenant.org_id) == before


async def test_get_update_delete_bad_or_unknown_ids(lists, tenant):
    await invalid(lists.GetDonorList(pb.GetDonorListRequest(id=""), metadata=tenant.md), "id")
    await invalid(lists.GetDonorList(pb.GetDonorListRequest(id="nope"), metadata=tenant.md), "id")
    await fails(lists.GetDonorList(pb.GetDonorListRequest(id=str(uuid.uuid4())), metadata=tenant.md),
                 grpc.StatusCode.NOT_FOUND)
    await invalid(_update(lists, tenant, lpb.DonorList(id="nope", name="x"), ["name"]), "donor_list.id")
    await fails(_update(lists, tenant, lpb.DonorList(id=str(uuid.uuid4()), name="x"), ["name"]),
                 grpc.StatusCode.NOT_FOUND)
    await invalid(lists.DeleteDonorList(pb.DeleteDonorListRequest(id="nope"), metadata=tenant.md), "id")
    await fails(lists.DeleteDonorList(pb.DeleteDonorListRequest(id=str(uuid.uuid4())), metadata=tenant.md),
                 grpc.StatusCode.NOT_FOUND)


async def test_list_pages_newest_first(lists, stubs):
    tenant = await stubs.sign_up("Paging lists")
    made = [(await _create(lists, tenant, name=f"L{i}")).id for i in range(5)]
    seen, token = [], ""
    while True:
        resp = await lists.ListDonorLists(pb.ListDonorListsRequest(page_size=2, page_token=token), metadata=tenant.md)
        assert len(resp.donor_lists) <= 2
        seen += [x.id for x in resp.donor_lists]
        token = resp.next_page_token
        if not token:
            break
    assert seen == list(reversed(made))
    await invalid(lists.ListDonorLists(pb.ListDonorListsRequest(page_size=-1), metadata=tenant.md), "page_size")
    await invalid(lists.ListDonorLists(pb.ListDonorListsRequest(page_token="garbage!"), metadata=tenant.md),
                   "page_token")


async def test_update_changes_masked_fields_and_checks_the_etag(lists, tenant, admin_db):
    lst = await _dynamic(lists, tenant, tags=["a"])
    updated = (await _update(lists, tenant, lpb.DonorList(id=lst.id, name="Renamed", description="ignored",
                                                          etag=lst.etag), ["name"])).donor_list
    assert updated.name == "Renamed" and updated.description == "" and updated.etag != lst.etag
    assert list(updated.filter.tags) == ["a"]
    updated = (await _update(lists, tenant, lpb.DonorList(id=lst.id, filter=lpb.DonorListFilter(city="Paris")),
                             ["filter"])).donor_list
    assert updated.filter.city == "Paris" and not updated.filter.tags
    before = await _written(admin_db, tenant.org_id)
    await fails(_update(lists, tenant, lpb.DonorList(id=lst.id, name="Stale", etag=lst.etag), ["name"]),
                 grpc.StatusCode.ABORTED)
    await invalid(_update(lists, tenant, lpb.DonorList(id=lst.id, name=" "), ["name"]), "donor_list.name")
    await invalid(_update(lists, tenant, lpb.DonorList(id=lst.id), ["type"]), "update_mask")
    await invalid(_update(lists, tenant, lpb.DonorList(id=lst.id, filter=lpb.DonorListFilter(country="X1")),
                           ["filter"]), "donor_list.filter.country")
    static = await _create(lists, tenant)
    await invalid(_update(lists, tenant, lpb.DonorList(id=static.id, filter=lpb.DonorListFilter(tags=["a"])),
                           ["filter"]), "donor_list.filter")
    after = await _written(admin_db, tenant.org_id)
    assert (after["versions"], after["members"]) == (before["versions"] + 1, before["members"])  # +1: the new list


async def test_delete_is_soft(lists, tenant, admin_db):
    lst = await _create(lists, tenant)
    await fails(lists.DeleteDonorList(pb.DeleteDonorListRequest(id=lst.id, etag='W/"99"'), metadata=tenant.md),
                 grpc.StatusCode.ABORTED)
    deleted = (await lists.DeleteDonorList(pb.DeleteDonorListRequest(id=lst.id, etag=lst.etag),
                                           metadata=tenant.md)).donor_list
    assert deleted.HasField("delete_time")
    await fails(lists.GetDonorList(pb.GetDonorListRequest(id=lst.id), metadata=tenant.md), grpc.StatusCode.NOT_FOUND)
    assert lst.id not in {x.id for x in (await lists.ListDonorLists(pb.ListDonorListsRequest(),
                                                                     metadata=tenant.md)).donor_lists}
    assert await admin_db.fetchval("SELECT deleted_at IS NOT NULL FROM crm.donor_lists WHERE id = $1::uuid", lst.id)


# -- static members --------------------------------------------------------------------------------


async def test_static_add_and_remove_keep_the_count(lists, stubs, tenant, admin_db):
    lst = await _create(lists, tenant)
    donors = [await _donor(stubs, tenant, first_name=f"D{i}") for i in range(3)]
    ids = [d.id for d in donors]
    resp = await _add(lists, tenant, lst.id, [ids[0], ids[1], ids[0]])
    assert resp.added_count == 2 and resp.donor_list.donor_count == 2
    resp = await _add(lists, tenant, lst.id, ids)  # idempotent: only the new one counts
    assert resp.added_count == 1 and resp.donor_list.donor_count == 3
    assert (await _get(lists, tenant, lst.id)).donor_count == 3
    assert set(await _members(lists, tenant, lst.id)) == set(ids)
    row = await admin_db.fetchrow("SELECT added_by, added_at FROM crm.donor_list_members WHERE list_id = $1::uuid "
                                  "AND donor_id = $2::uuid", lst.id, ids[0])
    assert str(row["added_by"]) == tenant.user_id
    resp = await _remove(lists, tenant, lst.id, [ids[1], ids[1]])
    assert resp.removed_count == 1 and resp.donor_list.donor_count == 2
    resp = await _remove(lists, tenant, lst.id, [ids[1]])  # idempotent
    assert resp.removed_count == 0 and resp.donor_list.donor_count == 2
    audited = await admin_db.fetchval("SELECT count(*) FROM crm.outbox WHERE aggregate_id = $1 "
                                      "AND routing_key = 'crm.audit.recorded'", lst.id)
    assert audited == 4  # create, two adds, one remove that changed something
    assert set(await _members(lists, tenant, lst.id)) == {ids[0], ids[2]}
    assert await admin_db.fetchval("SELECT count(*) FROM crm.donor_list_members WHERE list_id = $1::uuid",
                                   lst.id) == 2


async def test_a_soft_deleted_member_is_hidden_but_counted_until_removed(lists, stubs, tenant):
    lst = await _create(lists, tenant)
    a, b = await _donor(stubs, tenant), await _donor(stubs, tenant)
    await _add(lists, tenant, lst.id, [a.id, b.id])
    await stubs.donors.DeleteDonor(dpb.DeleteDonorRequest(id=a.id), metadata=tenant.md)
    assert await _members(lists, tenant, lst.id) == [b.id]
    assert (await _get(lists, tenant, lst.id)).donor_count == 2
    # a deleted donor cannot be added, but can be removed
    await invalid(_add(lists, tenant, lst.id, [b.id, a.id]), "donor_ids[1]")
    assert (await _remove(lists, tenant, lst.id, [a.id])).donor_list.donor_count == 1


async def test_members_page_by_page(lists, stubs, tenant):
    lst = await _create(lists, tenant)
    ids = [(await _donor(stubs, tenant)).id for _ in range(5)]
    await _add(lists, tenant, lst.id, ids)
    first = await lists.ListDonorListMembers(pb.ListDonorListMembersRequest(list_id=lst.id, page_size=2),
                                             metadata=tenant.md)
    assert len(first.donors) == 2 and first.next_page_token
    assert await _members(lists, tenant, lst.id, page_size=2) == list(reversed(ids))
    other = await _create(lists, tenant)
    await invalid(lists.ListDonorListMembers(pb.ListDonorListMembersRequest(
        list_id=other.id, page_token=first.next_page_token), metadata=tenant.md), "page_token")


async def test_member_changes_reject_bad_input_and_write_nothing(lists, stubs, tenant, other_tenant, admin_db):
    lst = await _create(lists, tenant)
    mine = await _donor(stubs, tenant)
    theirs = await _donor(stubs, other_tenant)
    await _add(lists, tenant, lst.id, [mine.id])
    dyn = await _dynamic(lists, tenant, tags=["x"])
    before = await _written(admin_db, tenant.org_id)
    for call in (_add, _remove):
        await invalid(call(lists, tenant, lst.id, []), "donor_ids")
        await invalid(call(lists, tenant, lst.id, [str(uuid.uuid4())] * 1001), "donor_ids")
        await invalid(call(lists, tenant, lst.id, [mine.id, "nope"]), "donor_ids[1]")
        await invalid(call(lists, tenant, lst.id, [mine.id, str(uuid.uuid4())]), "donor_ids[1]")
        err = await invalid(call(lists, tenant, lst.id, [theirs.id, mine.id]), "donor_ids[0]")
        assert "donor_ids[1]" not in field_violations(err)
        await invalid(call(lists, tenant, "nope", [mine.id]), "list_id")
        await invalid(call(lists, tenant, "", [mine.id]), "list_id")
        await fails(call(lists, tenant, str(uuid.uuid4()), [mine.id]), grpc.StatusCode.NOT_FOUND)
        err = await fails(call(lists, tenant, dyn.id, [mine.id]), grpc.StatusCode.FAILED_PRECONDITION)
        assert error_reason(err) == "LIST_IS_DYNAMIC"
    await invalid(lists.ListDonorListMembers(pb.ListDonorListMembersRequest(list_id="nope"), metadata=tenant.md),
                   "list_id")
    await invalid(lists.ListDonorListMembers(pb.ListDonorListMembersRequest(list_id=lst.id, page_size=-1),
                                              metadata=tenant.md), "page_size")
    assert await _written(admin_db, tenant.org_id) == before
    assert await _members(lists, tenant, lst.id) == [mine.id]


async def test_a_thousand_members_in_one_call(lists, stubs, tenant, admin_db):
    lst = await _create(lists, tenant)
    ids = [str(uuid.uuid4()) for _ in range(1000)]
    await admin_db.executemany(
        "INSERT INTO crm.donors (id, organization_id, first_name) VALUES ($1::uuid, $2::uuid, 'Bulk')",
        [(i, tenant.org_id) for i in ids])
    resp = await _add(lists, tenant, lst.id, ids)
    assert resp.added_count == 1000 and resp.donor_list.donor_count == 1000
    assert (await _remove(lists, tenant, lst.id, ids[:400])).donor_list.donor_count == 600


# -- dynamic lists ---------------------------------------------------------------------------------


async def test_dynamic_filters_are_evaluated_when_read(lists, stubs):
    tenant = await stubs.sign_up("Dynamic lists")
    a = await _donor(stubs, tenant, journey_stage="cultivation", tags=["gala", "board"],
                     address=donor_pb2.Address(city="Paris", state="IDF", country="FR"),
                     custom_fields=struct_pb2.Struct(fields={"tier": struct_pb2.Value(string_value="gold")}))
    b = await _donor(stubs, tenant, journey_stage="prospect", tags=["gala"],
                     address=donor_pb2.Address(city="paris", country="US"))
    c = await _donor(stubs, tenant, tags=["board"])
    await stubs.donations.RecordDonation(gift(c.id, usd(500), date=day(2025, 3, 1)), metadata=tenant.md)
    await stubs.donations.RecordDonation(gift(c.id, usd(250, currency="EUR"), date=day(2026, 6, 1)),
                                         metadata=tenant.md)
    await stubs.donations.RecordDonation(gift(b.id, usd(50), date=day(2024, 1, 1)), metadata=tenant.md)

    async def matches(**kw):
        lst = await _dynamic(lists, tenant, **kw)
        got = await _members(lists, tenant, lst.id, page_size=1)
        assert (await _get(lists, tenant, lst.id)).donor_count == len(got)
        return set(got)

    assert await matches() == {a.id, b.id, c.id}
    assert await matches(journey_stages=["cultivation", "prospect"]) >= {a.id}
    assert await matches(journey_stages=["cultivation"]) == {a.id}
    assert await matches(tags=["gala"]) == {a.id, b.id}
    assert await matches(tags=["gala", "board"]) == {a.id}
    assert await matches(min_lifetime_giving=usd(100)) == {c.id}
    assert await matches(min_lifetime_giving=usd(50)) == {b.id, c.id}
    assert await matches(max_lifetime_giving=usd(100)) == {a.id, b.id}  # no gifts: 0
    assert await matches(min_lifetime_giving=usd(200, currency="EUR")) == {c.id}
    assert await matches(min_lifetime_giving=usd(1), max_lifetime_giving=usd(100)) == {b.id}
    assert await matches(last_gift_before=day(2025, 1, 1)) == {b.id}
    assert await matches(last_gift_after=day(2026, 1, 1)) == {c.id}  # the latest gift in any currency
    assert await matches(last_gift_after=day(2023, 1, 1), last_gift_before=day(2026, 1, 1)) == {b.id}
    assert await matches(city="PARIS") == {a.id, b.id}
    assert await matches(city="Paris", country="fr") == {a.id}
    assert await matches(state="idf") == {a.id}
    assert await matches(custom_fields=[lpb.CustomFieldEquals(key="tier", value="gold")]) == {a.id}
    assert await matches(custom_fields=[lpb.CustomFieldEquals(key="tier", value="silver")]) == set()

    # evaluated when read: a new matching donor shows at once; a deleted one goes
    lst = await _dynamic(lists, tenant, tags=["gala"])
    d = await _donor(stubs, tenant, tags=["gala"])
    assert set(await _members(lists, tenant, lst.id)) == {a.id, b.id, d.id}
    await stubs.donors.DeleteDonor(dpb.DeleteDonorRequest(id=d.id), metadata=tenant.md)
    assert (await _get(lists, tenant, lst.id)).donor_count == 2
    listed = {x.id: x for x in (await lists.ListDonorLists(pb.ListDonorListsRequest(),
                                                           metadata=tenant.md)).donor_lists}
    assert listed[lst.id].donor_count == 2
    got = (await lists.GetDonorList(pb.GetDonorListRequest(id=lst.id), metadata=tenant.md)).donor_list
    assert list(got.filter.tags) == ["gala"] and got.type == DYNAMIC


async def test_filter_round_trips(lists, tenant):
    f = lpb.DonorListFilter(journey_stages=["prospect"], tags=["a", "b"], min_lifetime_giving=usd(10, 500_000_000),
                            max_lifetime_giving=usd(20), last_gift_before=day(2026, 5, 1),
                            last_gift_after=day(2025, 5, 1), city="Lyon", state="ARA", country="FR",
                            custom_fields=[lpb.CustomFieldEquals(key="k", value="v")])
    lst = await _create(lists, tenant, type=DYNAMIC, filter=f)
    assert lst.filter == f
    assert (await _get(lists, tenant, lst.id)).filter == f


# -- merges --------------------------------------------------------------------------------------


async def test_a_merge_moves_list_memberships(lists, stubs, tenant, admin_db):
    survivor = await _donor(stubs, tenant, first_name="Sur")
    merged = await _donor(stubs, tenant, first_name="Mer")
    only_merged = await _create(lists, tenant, name="Only merged")
    both = await _create(lists, tenant, name="Both")
    await _add(lists, tenant, only_merged.id, [merged.id])
    await _add(lists, tenant, both.id, [survivor.id, merged.id])
    await stubs.donors.MergeDonors(dpb.MergeDonorsRequest(survivor_id=survivor.id, merged_id=merged.id),
                                   metadata=tenant.md)
    assert await _members(lists, tenant, only_merged.id) == [survivor.id]
    assert await _members(lists, tenant, both.id) == [survivor.id]
    assert (await _get(lists, tenant, only_merged.id)).donor_count == 1
    assert (await _get(lists, tenant, both.id)).donor_count == 1
    assert await admin_db.fetchval("SELECT count(*) FROM crm.donor_list_members WHERE donor_id = $1::uuid",
                                   merged.id) == 0


# -- tenancy and permissions -------------------------------------------------------------------------


async def test_another_tenant_sees_and_touches_nothing(lists, stubs, tenant, other_tenant, admin_db):
    lst = await _create(lists, tenant)
    dyn = await _dynamic(lists, tenant)
    mine = await _donor(stubs, tenant)
    theirs = await _donor(stubs, other_tenant)
    await _add(lists, tenant, lst.id, [mine.id])
    before = await _written(admin_db, tenant.org_id)
    for list_id in (lst.id, dyn.id):
        for call in (lists.GetDonorList(pb.GetDonorListRequest(id=list_id), metadata=other_tenant.md),
                     _update(lists, other_tenant, lpb.DonorList(id=list_id, name="Mallory"), ["name"]),
                     lists.DeleteDonorList(pb.DeleteDonorListRequest(id=list_id), metadata=other_tenant.md),
                     _add(lists, other_tenant, list_id, [theirs.id]),
                     _remove(lists, other_tenant, list_id, [theirs.id]),
                     lists.ListDonorListMembers(pb.ListDonorListMembersRequest(list_id=list_id),
                                                metadata=other_tenant.md)):
            await fails(call, grpc.StatusCode.NOT_FOUND)
    listed = await lists.ListDonorLists(pb.ListDonorListsRequest(), metadata=other_tenant.md)
    assert not listed.donor_lists and listed.next_page_token == ""
    # their dynamic list never sees our donors
    theirs_dyn = await _dynamic(lists, other_tenant)
    assert await _members(lists, other_tenant, theirs_dyn.id) == [theirs.id]
    assert (await _get(lists, other_tenant, theirs_dyn.id)).donor_count == 1
    # their static list cannot take our donor
    their_list = await _create(lists, other_tenant)
    await invalid(_add(lists, other_tenant, their_list.id, [mine.id]), "donor_ids[0]")
    assert await _written(admin_db, tenant.org_id) == before
    assert await _members(lists, tenant, lst.id) == [mine.id]
    md = (("authorization", f"Bearer {tenant.access_token}"), ("x-tenant-id", other_tenant.org_id))
    await fails(lists.ListDonorLists(pb.ListDonorListsRequest(), metadata=md), grpc.StatusCode.PERMISSION_DENIED)
    await fails(lists.ListDonorLists(pb.ListDonorListsRequest()), grpc.StatusCode.UNAUTHENTICATED)
    conn = await asyncpg.connect(plain_dsn(ServiceSettings().app_database_url("crm")))
    try:
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.tenant_id', $1, true)", other_tenant.org_id)
            assert await conn.fetchval("SELECT count(*) FROM crm.donor_lists WHERE id = $1::uuid", lst.id) == 0
            assert await conn.fetchval("SELECT count(*) FROM crm.donor_list_members WHERE list_id = $1::uuid",
                                       lst.id) == 0
    finally:
        await conn.close()


def test_roles_grant_the_list_permissions():
    staff, viewer = roles.SYSTEM_ROLES["staff"], roles.SYSTEM_ROLES["viewer"]
    assert roles.holds(staff, "crm.lists.read") and roles.holds(staff, "crm.lists.write")
    assert roles.holds(viewer, "crm.lists.read") and not roles.holds(viewer, "crm.lists.write")
    for role in ("admin", "owner"):
        assert roles.holds(roles.SYSTEM_ROLES[role], "crm.lists.write")
