"""Finding donors again: search, duplicates, merge, restore."""

import hashlib
import json
import uuid

import asyncpg
import grpc
import pytest
from givance.crm.v1 import donation_service_pb2 as dpb
from givance.crm.v1 import donor_pb2
from givance.crm.v1 import donor_service_pb2 as pb
from givance.events.v1 import crm_events_pb2, event_pb2

from chassis.settings import plain_dsn
from tests.helpers import day, error_reason, fails, field_violations, gift, new_donor, usd


async def _donor(stubs, tenant, **kw):
    return (await stubs.donors.CreateDonor(new_donor(**kw), metadata=tenant.md)).donor


async def _search(stubs, tenant, query, **kw):
    return await stubs.donors.SearchDonors(pb.SearchDonorsRequest(query=query, **kw), metadata=tenant.md)


def _hits(resp):
    return {r.donor.id: r.score for r in resp.results}


async def _get(stubs, tenant, donor_id):
    return (await stubs.donors.GetDonor(pb.GetDonorRequest(id=donor_id), metadata=tenant.md)).donor



# -- search ------------------------------------------------------------------------------------


async def test_search_tolerates_case_accents_and_typos(stubs, tenant):
    jose = await _donor(stubs, tenant, first_name="José", last_name="García")
    ada = await _donor(stubs, tenant, first_name="Ada", last_name="Lovelace", email="ada@example.org")
    grace = await _donor(stubs, tenant, first_name="Grace", last_name="Hopper")

    hits = _hits(await _search(stubs, tenant, "jose"))
    assert list(hits) == [jose.id] and hits[jose.id] == 1.0
    assert list(_hits(await _search(stubs, tenant, "GARCIA"))) == [jose.id]
    assert list(_hits(await _search(stubs, tenant, "José"))) == [jose.id]
    hits = _hits(await _search(stubs, tenant, "lovelce"))  # a letter missing
    assert list(hits) == [ada.id] and 0.5 <= hits[ada.id] < 1.0
    assert list(_hits(await _search(stubs, tenant, "grace hoper"))) == [grace.id]
    assert list(_hits(await _search(stubs, tenant, "ada@example.org"))) == [ada.id]
    assert not (await _search(stubs, tenant, "zebulon")).results


async def test_search_ranks_the_closest_first(stubs, tenant):
    exact = await _donor(stubs, tenant, first_name="Maria", last_name="Lopez")
    near = await _donor(stubs, tenant, first_name="Mario", last_name="Lopes")
    resp = await _search(stubs, tenant, "maria lopez")
    ids = [r.donor.id for r in resp.results]
    assert ids[0] == exact.id and near.id in ids
    scores = [r.score for r in resp.results]
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[1]


async def test_search_by_phone_matches_digits_in_any_format(stubs, tenant):
    caller = await _donor(stubs, tenant, first_name="Phil", last_name="Caller", phone="(202) 555-0143")
    await _donor(stubs, tenant, first_name="Other", last_name="Number", phone="(202) 555-0199")
    for query in ("202-555-0143", "+1 202 555 0143", "5550143", "(202) 555 0143"):
        hits = _hits(await _search(stubs, tenant, query))
        assert hits == {caller.id: 1.0}, query
    assert len((await _search(stubs, tenant, "202 555")).results) == 2


async def test_search_pages_without_gaps_or_repeats(stubs, tenant):
    made = {(await _donor(stubs, tenant, first_name=f"Kim{i}", last_name="Sorensen")).id for i in range(5)}
    seen, token = [], ""
    while True:
        page = await _search(stubs, tenant, "sorensen", page_size=2, page_token=token)
        assert len(page.results) <= 2
        seen += [r.donor.id for r in page.results]
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == 5 and set(seen) == made


async def test_search_breaks_equal_scores_by_last_name_first_name_and_creation(stubs, tenant):
    # Every donor here holds the word "quill" exactly: equal scores (1.0). The documented order
    # is then last name, first name, creation time (then id), on every call and across pages.
    zoe = await _donor(stubs, tenant, first_name="Zoe", last_name="Quill")
    bea = await _donor(stubs, tenant, first_name="Bea", last_name="Quill")
    adam1 = await _donor(stubs, tenant, first_name="Adam", last_name="Quill")
    adam2 = await _donor(stubs, tenant, first_name="Adam", last_name="Quill", email="adam2@example.org")
    ava = await _donor(stubs, tenant, first_name="Quill", last_name="Abbott")
    expected = [ava.id, adam1.id, adam2.id, bea.id, zoe.id]
    for _ in range(3):
        resp = await _search(stubs, tenant, "quill")
        assert {r.score for r in resp.results} == {1.0}
        assert [r.donor.id for r in resp.results] == expected
    paged, token = [], ""
    while True:
        page = await _search(stubs, tenant, "quill", page_size=2, page_token=token)
        paged += [r.donor.id for r in page.results]
        token = page.next_page_token
        if not token:
            break
    assert paged == expected


async def test_search_sees_neither_deleted_donors_nor_other_tenants(stubs, tenant, other_tenant):
    gone = await _donor(stubs, tenant, first_name="Gone", last_name="Away")
    await stubs.donors.DeleteDonor(pb.DeleteDonorRequest(id=gone.id), metadata=tenant.md)
    await _donor(stubs, other_tenant, first_name="Secret", last_name="Elsewhere")
    assert not (await _search(stubs, tenant, "gone away")).results
    assert not (await _search(stubs, tenant, "secret elsewhere")).results


# -- duplicates ----------------------------------------------------------------------------------


async def _duplicates(stubs, tenant, **kw):
    return await stubs.donors.FindDuplicateDonors(pb.FindDuplicateDonorsRequest(**kw), metadata=tenant.md)


def _pairs(resp):
    return {frozenset((p.donor.id, p.duplicate.id)): p for p in resp.pairs}


async def test_duplicates_by_each_reason_with_scores(stubs, tenant, other_tenant, admin_db):
    R = pb  # the reasons are enum values of the service package
    e1 = await _donor(stubs, tenant, first_name="Eve", last_name="One", email="eve@example.org")
    e2 = await _donor(stubs, tenant, first_name="Evelyn", last_name="Other", email="EVE@example.org")
    p1 = await _donor(stubs, tenant, first_name="Pat", last_name="Phone", phone="202-555-0111")
    p2 = await _donor(stubs, tenant, first_name="Patricia", last_name="Dial", phone="+12025550111")
    street = donor_pb2.Address(street="1 Main St", postal_code="12345", city="Springfield")
    n1 = await _donor(stubs, tenant, first_name="John", last_name="Smith", address=street)
    n2 = await _donor(stubs, tenant, first_name="Jon", last_name="Smith", address=street)
    c1 = await _donor(stubs, tenant, first_name="Zoë", last_name="Müller", address=donor_pb2.Address(city="Zürich"))
    c2 = await _donor(stubs, tenant, first_name="Zoe", last_name="Muller", address=donor_pb2.Address(city="zurich"))
    both1 = await _donor(stubs, tenant, first_name="Bo", last_name="Th", email="both@example.org",
                         phone="202-555-0177")
    both2 = await _donor(stubs, tenant, first_name="Bee", last_name="Oh", email="both@example.org",
                         phone="202-555-0177")
    # similar names elsewhere, different people, a deleted twin, another tenant's twin: no pairs
    await _donor(stubs, tenant, first_name="John", last_name="Smith", address=donor_pb2.Address(city="Shelbyville"))
    await _donor(stubs, tenant, first_name="Ada", last_name="Lovelace", address=street)
    gone = await _donor(stubs, tenant, first_name="Gone", last_name="Twin", email="eve@example.org")
    await stubs.donors.DeleteDonor(pb.DeleteDonorRequest(id=gone.id), metadata=tenant.md)
    await _donor(stubs, other_tenant, first_name="Eve", last_name="One", email="eve@example.org")

    resp = await _duplicates(stubs, tenant)
    pairs = _pairs(resp)
    assert set(pairs) == {frozenset((a.id, b.id)) for a, b in ((e1, e2), (p1, p2), (n1, n2), (c1, c2),
                                                                 (both1, both2))}
    email = pairs[frozenset((e1.id, e2.id))]
    assert list(email.reasons) == [R.DUPLICATE_REASON_SAME_EMAIL] and email.score == 0.95
    phone = pairs[frozenset((p1.id, p2.id))]
    assert list(phone.reasons) == [R.DUPLICATE_REASON_SAME_PHONE] and phone.score == 0.9
    twice = pairs[frozenset((both1.id, both2.id))]
    assert list(twice.reasons) == [R.DUPLICATE_REASON_SAME_EMAIL, R.DUPLICATE_REASON_SAME_PHONE]
    assert twice.score == 0.995  # 1 - (1 - 0.95)(1 - 0.9)
    name_sim = await admin_db.fetchval("SELECT round(similarity('john smith', 'jon smith')::numeric, 4)::float8")
    name = pairs[frozenset((n1.id, n2.id))]
    assert list(name.reasons) == [R.DUPLICATE_REASON_SIMILAR_NAME_SAME_ADDRESS] and name.score == name_sim
    city = pairs[frozenset((c1.id, c2.id))]  # accents and case ignored, in names and in the city
    assert list(city.reasons) == [R.DUPLICATE_REASON_SIMILAR_NAME_SAME_ADDRESS] and city.score == 1.0
    scores = [p.score for p in resp.pairs]
    assert scores == sorted(scores, reverse=True)


async def test_duplicates_of_one_donor_and_paging(stubs, tenant, other_tenant):
    a = await _donor(stubs, tenant, first_name="A", last_name="Dup", email="dup@example.org")
    others = {(await _donor(stubs, tenant, first_name=f"B{i}", last_name="Dup", email="dup@example.org")).id
              for i in range(3)}
    mine = await _duplicates(stubs, tenant, donor_id=a.id)
    assert {p.donor.id for p in mine.pairs} == {a.id}
    assert {p.duplicate.id for p in mine.pairs} == others
    seen, token = [], ""
    while True:  # four donors with one email: six pairs
        page = await _duplicates(stubs, tenant, page_size=4, page_token=token)
        seen += [frozenset((p.donor.id, p.duplicate.id)) for p in page.pairs]
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == 6 and len(set(seen)) == 6
    await fails(_duplicates(stubs, other_tenant, donor_id=a.id), grpc.StatusCode.NOT_FOUND)
    assert not (await _duplicates(stubs, other_tenant)).pairs


# -- merge ---------------------------------------------------------------------------------------


def _totals(donor):
    return {t.lifetime_amount.currency_code: t for t in donor.giving_totals}


async def _merge(stubs, tenant, survivor_id, merged_id, **kw):
    return await stubs.donors.MergeDonors(
        pb.MergeDonorsRequest(survivor_id=survivor_id, merged_id=merged_id, **kw), metadata=tenant.md)


async def test_merge_moves_gifts_recomputes_totals_and_resolves_the_merged_id(stubs, tenant, admin_db):
    survivor = await _donor(stubs, tenant, first_name="Ada", last_name="Lovelace")
    merged = await _donor(stubs, tenant, first_name="Ada", last_name="Lovelce", email="ada@example.org")
    for donor_id, amount, when in ((survivor.id, usd(100, 250_000_000), day(2025, 3, 1)),
                                   (survivor.id, usd(40, currency="EUR"), day(2024, 12, 31)),
                                   (merged.id, usd(0, 990_000_000), day(2026, 1, 9)),
                                   (merged.id, usd(10, 50_000_000, currency="GBP"), day(2023, 5, 5)),
                                   (merged.id, usd(5), day(2022, 2, 2))):
        await stubs.donations.RecordDonation(gift(donor_id, amount, date=when), metadata=tenant.md)
    survivor = await _get(stubs, tenant, survivor.id)
    merged = await _get(stubs, tenant, merged.id)

    resp = await _merge(stubs, tenant, survivor.id, merged.id, survivor_etag=survivor.etag,
                        merged_etag=merged.etag)
    assert resp.moved_donation_count == 3 and resp.survivor.id == survivor.id
    assert resp.survivor.etag != survivor.etag
    t = _totals(resp.survivor)
    assert set(t) == {"USD", "EUR", "GBP"}
    assert (t["USD"].lifetime_amount.units, t["USD"].lifetime_amount.nanos, t["USD"].donation_count) == \
        (106, 240_000_000, 3)
    assert (t["USD"].first_gift_date.year, t["USD"].last_gift_date.year) == (2022, 2026)
    assert (t["EUR"].lifetime_amount.units, t["EUR"].donation_count) == (40, 1)
    assert (t["GBP"].lifetime_amount.units, t["GBP"].lifetime_amount.nanos) == (10, 50_000_000)
    totals = await admin_db.fetch("SELECT currency, lifetime_amount::text AS amount FROM crm.donor_giving "
                                  "WHERE donor_id = $1::uuid ORDER BY currency", survivor.id)
    assert [(r["currency"], r["amount"]) for r in totals] == [("EUR", "40.00"), ("GBP", "10.05"), ("USD", "106.24")]
    assert await admin_db.fetchval("SELECT count(*) FROM crm.donor_giving WHERE donor_id = $1::uuid", merged.id) == 0

    # the merged id now reads as the survivor; its gifts are the survivor's
    assert (await _get(stubs, tenant, merged.id)).id == survivor.id
    gifts = await stubs.donations.ListDonations(dpb.ListDonationsRequest(donor_id=survivor.id), metadata=tenant.md)
    assert len(gifts.donations) == 5
    row = await admin_db.fetchrow("SELECT deleted_at, merged_into_id FROM crm.donors WHERE id = $1::uuid", merged.id)
    assert row["deleted_at"] is not None and str(row["merged_into_id"]) == survivor.id
    assert merged.id not in {d.id for d in (await stubs.donors.ListDonors(pb.ListDonorsRequest(),
                                                                          metadata=tenant.md)).donors}

    # the event, through the outbox, and the audit entry
    body = await admin_db.fetchval("SELECT body FROM crm.outbox WHERE routing_key = 'crm.donor.merged' "
                                   "AND tenant_id = $1::uuid", tenant.org_id)
    env = event_pb2.Event.FromString(body)
    payload = crm_events_pb2.DonorMergedEvent()
    assert env.payload.Unpack(payload)
    assert (payload.survivor_id, payload.merged_id, env.tenant_id) == (survivor.id, merged.id, tenant.org_id)
    assert await admin_db.fetchval("SELECT count(*) FROM crm.outbox WHERE routing_key = 'crm.audit.recorded' "
                                   "AND aggregate_id = $1 AND tenant_id = $2::uuid", survivor.id, tenant.org_id) >= 1

    # a merged donor is merged (or restored, or merged into) no more
    third = await _donor(stubs, tenant, first_name="Third")
    err = await fails(_merge(stubs, tenant, third.id, merged.id), grpc.StatusCode.FAILED_PRECONDITION)
    assert error_reason(err) == "DONOR_ALREADY_MERGED"
    err = await fails(_merge(stubs, tenant, merged.id, third.id), grpc.StatusCode.FAILED_PRECONDITION)
    assert error_reason(err) == "DONOR_MERGED"
    err = await fails(stubs.donors.RestoreDonor(pb.RestoreDonorRequest(id=merged.id), metadata=tenant.md),
                       grpc.StatusCode.FAILED_PRECONDITION)
    assert error_reason(err) == "DONOR_MERGED"


async def test_merging_a_survivor_carries_earlier_merges_along(stubs, tenant):
    a = await _donor(stubs, tenant, first_name="A")
    b = await _donor(stubs, tenant, first_name="B")
    c = await _donor(stubs, tenant, first_name="C")
    await stubs.donations.RecordDonation(gift(c.id, usd(7)), metadata=tenant.md)
    await _merge(stubs, tenant, b.id, c.id)
    resp = await _merge(stubs, tenant, a.id, b.id)
    assert resp.moved_donation_count == 1 and _totals(resp.survivor)["USD"].lifetime_amount.units == 7
    assert (await _get(stubs, tenant, c.id)).id == a.id
    assert (await _get(stubs, tenant, b.id)).id == a.id


async def test_merge_moves_list_memberships_and_todos_when_those_tables_exist(stubs, tenant, admin_db, monkeypatch):
    from services.crm.store import donor_matching

    suffix = uuid.uuid4().hex[:8]
    members, todos = f"crm.test_members_{suffix}", f"crm.test_todos_{suffix}"
    async with admin_db.transaction():  # as the schema owner, so the service role gets its usual grants
        await admin_db.execute("SET LOCAL ROLE givance_owner")
        await admin_db.execute(
            f"CREATE TABLE {members} (organization_id uuid NOT NULL, list_id uuid NOT NULL, donor_id uuid NOT NULL, "
            "updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (list_id, donor_id));"
            f"CREATE TABLE {todos} (id uuid PRIMARY KEY, organization_id uuid NOT NULL, donor_id uuid)")
        for table in (members, todos):
            await admin_db.execute(
                f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY; ALTER TABLE {table} FORCE ROW LEVEL SECURITY;"
                f"CREATE POLICY tenant_isolation ON {table} USING "
                "(organization_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)")
    monkeypatch.setattr(donor_matching, "DONOR_REFERENCES", ((members, "list_id"), (todos, None),
                                                            ("crm.no_such_table", None)))
    try:
        survivor = await _donor(stubs, tenant, first_name="Stays")
        merged = await _donor(stubs, tenant, first_name="Goes")
        both, only_merged, todo = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        org = uuid.UUID(tenant.org_id)
        await admin_db.executemany(f"INSERT INTO {members} (organization_id, list_id, donor_id) VALUES ($1, $2, $3)",
                                   [(org, both, uuid.UUID(survivor.id)), (org, both, uuid.UUID(merged.id)),
                                    (org, only_merged, uuid.UUID(merged.id))])
        await admin_db.execute(f"INSERT INTO {todos} VALUES ($1, $2, $3)", todo, org, uuid.UUID(merged.id))
        await _merge(stubs, tenant, survivor.id, merged.id)
        rows = await admin_db.fetch(f"SELECT list_id, donor_id::text FROM {members} ORDER BY list_id")
        assert sorted((r["list_id"], r["donor_id"]) for r in rows) == sorted(
            [(both, survivor.id), (only_merged, survivor.id)])
        assert await admin_db.fetchval(f"SELECT donor_id::text FROM {todos} WHERE id = $1", todo) == survivor.id
    finally:
        await admin_db.execute(f"DROP TABLE {members}, {todos}")


async def _snapshot(admin_db, org_id):
    donors = await admin_db.fetch("SELECT id, version, deleted_at, merged_into_id FROM crm.donors "
                                  "WHERE organization_id = $1::uuid ORDER BY id", org_id)
    gifts = await admin_db.fetch("SELECT id, donor_id FROM crm.donations WHERE organization_id = $1::uuid "
                                 "ORDER BY id", org_id)
    totals = await admin_db.fetch("SELECT donor_id, currency, lifetime_amount, donation_count FROM crm.donor_giving "
                                  "WHERE organization_id = $1::uuid ORDER BY donor_id, currency", org_id)
    # read audits are written in batches a moment after a read (chassis.audit): not this request's
    outbox = await admin_db.fetchval("SELECT count(*) FROM crm.outbox WHERE tenant_id = $1::uuid "
                                     "AND routing_key <> 'crm.audit.batch_recorded'", org_id)
    return [dict(r) for r in donors], [dict(r) for r in gifts], [dict(r) for r in totals], outbox


async def test_cross_tenant_merge_is_not_found_and_changes_nothing(stubs, tenant, other_tenant, admin_db):
    a = await _donor(stubs, tenant, first_name="A")
    b = await _donor(stubs, tenant, first_name="B")
    await stubs.donations.RecordDonation(gift(b.id, usd(3)), metadata=tenant.md)
    theirs = await _donor(stubs, other_tenant, first_name="Theirs")
    before = (await _snapshot(admin_db, tenant.org_id), await _snapshot(admin_db, other_tenant.org_id))
    for caller, survivor_id, merged_id in ((other_tenant, a.id, b.id), (other_tenant, theirs.id, b.id),
                                           (other_tenant, a.id, theirs.id), (tenant, a.id, theirs.id),
                                           (tenant, theirs.id, b.id)):
        await fails(_merge(stubs, caller, survivor_id, merged_id), grpc.StatusCode.NOT_FOUND)
    assert (await _snapshot(admin_db, tenant.org_id), await _snapshot(admin_db, other_tenant.org_id)) == before
    await _merge(stubs, tenant, a.id, b.id)
    await fails(_get(stubs, other_tenant, b.id), grpc.StatusCode.NOT_FOUND)  # no resolving across tenants


async def test_merge_with_a_stale_etag_is_aborted_and_changes_nothing(stubs, tenant, admin_db):
    a = await _donor(stubs, tenant, first_name="A")
    b = await _donor(stubs, tenant, first_name="B")
    await stubs.donations.RecordDonation(gift(b.id, usd(3)), metadata=tenant.md)
    before = await _snapshot(admin_db, tenant.org_id)
    await fails(_merge(stubs, tenant, a.id, b.id, merged_etag='W/"999"'), grpc.StatusCode.ABORTED)
    await fails(_merge(stubs, tenant, a.id, b.id, survivor_etag='W/"999"'), grpc.StatusCode.ABORTED)
    assert await _snapshot(admin_db, tenant.org_id) == before


async def test_merge_of_a_deleted_donor_is_not_found(stubs, tenant):
    a = await _donor(stubs, tenant, first_name="A")
    b = await _donor(stubs, tenant, first_name="B")
    await stubs.donors.DeleteDonor(pb.DeleteDonorRequest(id=b.id), metadata=tenant.md)
    await fails(_merge(stubs, tenant, a.id, b.id), grpc.StatusCode.NOT_FOUND)
    await fails(_merge(stubs, tenant, b.id, a.id), grpc.StatusCode.NOT_FOUND)


# -- restore -------------------------------------------------------------------------------------


async def _restore(stubs, tenant, donor_id, etag=""):
    return await stubs.donors.RestoreDonor(pb.RestoreDonorRequest(id=donor_id, etag=etag), metadata=tenant.md)


async def test_restore_undoes_a_soft_delete(stubs, tenant, other_tenant):
    donor = await _donor(stubs, tenant, first_name="Back", last_name="Again")
    await stubs.donations.RecordDonation(gift(donor.id, usd(12)), metadata=tenant.md)
    deleted = (await stubs.donors.DeleteDonor(pb.DeleteDonorRequest(id=donor.id), metadata=tenant.md)).donor
    await fails(_get(stubs, tenant, donor.id), grpc.StatusCode.NOT_FOUND)
    await fails(_restore(stubs, other_tenant, donor.id), grpc.StatusCode.NOT_FOUND)
    await fails(_restore(stubs, tenant, donor.id, etag='W/"999"'), grpc.StatusCode.ABORTED)
    restored = (await _restore(stubs, tenant, donor.id, etag=deleted.etag)).donor
    assert restored.id == donor.id and not restored.HasField("delete_time") and restored.etag != deleted.etag
    got = await _get(stubs, tenant, donor.id)
    assert got.first_name == "Back" and _totals(got)["USD"].lifetime_amount.units == 12
    assert [r.donor.id for r in (await _search(stubs, tenant, "back again")).results] == [donor.id]
    err = await fails(_restore(stubs, tenant, donor.id), grpc.StatusCode.FAILED_PRECONDITION)
    assert error_reason(err) == "DONOR_NOT_DELETED"
    await fails(_restore(stubs, tenant, str(uuid.uuid4())), grpc.StatusCode.NOT_FOUND)


async def test_restore_when_the_external_id_was_taken_is_already_exists(stubs, tenant, admin_db):
    first = await _donor(stubs, tenant, external_id="ext-restore")
    await stubs.donors.DeleteDonor(pb.DeleteDonorRequest(id=first.id), metadata=tenant.md)
    await _donor(stubs, tenant, external_id="ext-restore")
    err = await fails(_restore(stubs, tenant, first.id), grpc.StatusCode.ALREADY_EXISTS)
    assert error_reason(err) == "EXTERNAL_ID_TAKEN"
    assert await admin_db.fetchval("SELECT deleted_at FROM crm.donors WHERE id = $1::uuid", first.id) is not None


# -- bad input -----------------------------------------------------------------------------------


async def _counts(admin_db, org_id):
    q = ("SELECT (SELECT count(*) FROM crm.donors WHERE organization_id = $1::uuid),"
         " (SELECT count(*) FROM crm.donors WHERE organization_id = $1::uuid AND deleted_at IS NOT NULL),"
         " (SELECT coalesce(sum(version), 0) FROM crm.donors WHERE organization_id = $1::uuid),"
         " (SELECT count(*) FROM crm.donations WHERE organization_id = $1::uuid),"
         " (SELECT count(*) FROM crm.donor_giving WHERE organization_id = $1::uuid),"
         " (SELECT count(*) FROM crm.outbox WHERE tenant_id = $1::uuid"
         " AND routing_key <> 'crm.audit.batch_recorded')")
    return tuple(await admin_db.fetchrow(q, org_id))


@pytest.mark.parametrize("method,kwargs,field", [
    ("SearchDonors", {"query": ""}, "query"),
    ("SearchDonors", {"query": "   "}, "query"),
    ("SearchDonors", {"query": "x" * 201}, "query"),
    ("SearchDonors", {"query": "!!! ..."}, "query"),
    ("SearchDonors", {"query": "ada", "page_size": -1}, "page_size"),
    ("SearchDonors", {"query": "ada", "page_token": "not-a-token"}, "page_token"),
    ("FindDuplicateDonors", {"donor_id": "nope"}, "donor_id"),
    ("FindDuplicateDonors", {"page_size": -5}, "page_size"),
    ("FindDuplicateDonors", {"page_token": "bm9wZQ"}, "page_token"),
    ("MergeDonors", {"survivor_id": "", "merged_id": "{b}"}, "survivor_id"),
    ("MergeDonors", {"survivor_id": "bad", "merged_id": "{b}"}, "survivor_id"),
    ("MergeDonors", {"survivor_id": "{a}", "merged_id": ""}, "merged_id"),
    ("MergeDonors", {"survivor_id": "{a}", "merged_id": "12"}, "merged_id"),
    ("MergeDonors", {"survivor_id": "{a}", "merged_id": "{a}"}, "merged_id"),
    ("MergeDonors", {"survivor_id": "{a}", "merged_id": "{A}"}, "merged_id"),
    ("RestoreDonor", {"id": ""}, "id"),
    ("RestoreDonor", {"id": "not-an-id"}, "id"),
])
async def test_bad_input_names_the_field_and_writes_nothing(stubs, tenant, admin_db, method, kwargs, field):
    a = await _donor(stubs, tenant, first_name="A", email="same@example.org")
    b = await _donor(stubs, tenant, first_name="B", email="same@example.org")
    await stubs.donations.RecordDonation(gift(b.id, usd(3)), metadata=tenant.md)
    await stubs.donors.DeleteDonor(pb.DeleteDonorRequest(id=b.id), metadata=tenant.md)
    ids = {"{a}": a.id, "{A}": a.id.upper(), "{b}": b.id}
    kwargs = {k: ids.get(v, v) if isinstance(v, str) else v for k, v in kwargs.items()}
    request = getattr(pb, f"{method}Request")(**kwargs)
    before = await _counts(admin_db, tenant.org_id)
    err = await fails(getattr(stubs.donors, method)(request, metadata=tenant.md), grpc.StatusCode.INVALID_ARGUMENT)
    assert field in field_violations(err), field_violations(err)
    assert await _counts(admin_db, tenant.org_id) == before


async def _search_plans(env, org_id: str, query: str, digits: str | None) -> list[dict]:
    """The plans of the statements crm.search_donor_ids runs, called as crm's own role under
    `org_id` (auto_explain's nested statements, sent to this session as LOG messages). A test
    table is tiny, so reading it and filtering is priced out: what shows is whether the
    trigram condition may be an index condition at all (under RLS without leakproof, never)."""
    conn = await asyncpg.connect(plain_dsn(env["database_url"]))
    logs: list[str] = []
    conn.add_log_listener(lambda _c, msg: logs.append(msg.message))
    try:
        for sql in ("LOAD 'auto_explain'", "SET auto_explain.log_min_duration = 0",
                    "SET auto_explain.log_nested_statements = on", "SET auto_explain.log_format = json",
                    "SET client_min_messages = log", "SET enable_seqscan = off", "SET cpu_operator_cost = 10",
                    "SET ROLE givance_crm"):
            await conn.execute(sql)
        async with conn.transaction():
            await conn.execute(f"SELECT set_config('app.tenant_id', '{uuid.UUID(org_id)}', true)")
            await conn.fetch("SELECT * FROM crm.search_donor_ids($1, $2)", query, digits)
    finally:
        await conn.close()
    plans = [json.loads(m.split("plan:", 1)[1]) for m in logs if "plan:" in m]
    return [p for p in plans if "crm.donors d" in p["Query Text"]]


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


async def test_search_is_tenant_scoped_and_index_served_without_leakproof_operators(stubs, tenant, other_tenant,
                                                                                    admin_db, env):
    """Under row-level security an index serves a condition only if its operator is leakproof;
    pg_trgm's <% and LIKE are not, and marking them needs a superuser at every migrate (managed
    PostgreSQL refuses). Nothing is marked: crm.search_donor_ids runs as the table's owner (no
    policy qualifier), filters by the caller's tenant itself, and reads trigram indexes that
    lead with organization_id, so a search reads its own organization's postings only
    (200,000 donors: as fast as the leakproof design for names, a phone search 1.7 s -> 15 ms)."""
    marked = await admin_db.fetch(
        "SELECT p.proname, p.proleakproof FROM pg_operator o JOIN pg_proc p ON p.oid = o.oprcode "
        "WHERE o.oprname IN ('%', '<%') AND o.oprleft = 'text'::regtype AND o.oprright = 'text'::regtype")
    assert {r["proname"]: r["proleakproof"] for r in marked} == {"similarity_op": False, "word_similarity_op": False}
    mine = await _donor(stubs, tenant, first_name="Leakproof", last_name="Nowhere", phone="+12025550188")
    theirs = await _donor(stubs, other_tenant, first_name="Leakproof", last_name="Nowhere")
    assert list(_hits(await _search(stubs, tenant, "leakproof nowhere"))) == [mine.id]
    assert list(_hits(await _search(stubs, other_tenant, "leakproof nowhere"))) == [theirs.id]
    assert list(_hits(await _search(stubs, tenant, "202 555 0188"))) == [mine.id]

    # An organization of a few thousand donors, so the plan is the one a real one gets.
    big = uuid.uuid4()
    await admin_db.execute(
        "INSERT INTO crm.donors (id, organization_id, first_name, last_name, phone) "
        "SELECT gen_random_uuid(), $1, 'Donor', md5(g::text), '+1202555' || lpad(g::text, 4, '0') "
        "FROM generate_series(1, 3000) g", big)
    await admin_db.execute("VACUUM ANALYZE crm.donors")  # and the GIN indexes' pending lists merged
    try:
        for digits, index_conds in ((None, {"search_text OPERATOR(public.%>)"}),
                                    ("%2025551234%", {"search_text OPERATOR(public.%>)", "phone_digits ~~ "})):
            plans = await _search_plans(env, str(big), hashlib.md5(b"1234").hexdigest()[:12], digits)
            assert plans, "crm.search_donor_ids ran no statement on crm.donors"
            conds = [n.get("Index Cond", "") for p in plans for n in _nodes(p["Plan"])]
            for cond in index_conds:  # the trigram condition is an index condition, with the tenant
                assert any(cond in c and "organization_id = " in c for c in conds), conds
    finally:
        await admin_db.execute("DELETE FROM crm.donors WHERE organization_id = $1", big)
    # The tenant is the caller's, never an argument: no tenant, no rows; and only crm may call it.
    conn = await asyncpg.connect(plain_dsn(env["database_url"]))
    try:
        await conn.execute("SET ROLE givance_crm")
        assert await conn.fetch("SELECT * FROM crm.search_donor_ids('leakproof', NULL)") == []
        await conn.execute("RESET ROLE; SET ROLE givance_identity")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM crm.search_donor_ids('leakproof', NULL)")
    finally:
        await conn.close()
