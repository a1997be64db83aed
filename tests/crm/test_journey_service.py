"""JourneyService: reading and editing the journey graph, moving donors along it, their stage
history (a new organization's default journey: test_journey_setup.py)."""

import json
import uuid

import asyncpg
import grpc
import pytest
from givance.crm.v1 import donor_service_pb2 as dpb
from givance.crm.v1 import journey_pb2
from givance.crm.v1 import journey_service_pb2 as pb
from givance.events.v1 import crm_events_pb2, event_pb2
from google.protobuf import field_mask_pb2

from chassis.settings import ServiceSettings, plain_dsn
from services.crm.domain.journeys import DEFAULT_JOURNEY
from services.identity.domain import roles
from tests.helpers import error_reason, fails, field_violations, invalid, new_donor

DEFAULT_IDS = [s["id"] for s in DEFAULT_JOURNEY["stages"]]


@pytest.fixture
def journeys(stubs):
    return stubs.journeys




async def _donor(stubs, tenant, **kw):
    return (await stubs.donors.CreateDonor(new_donor(**kw), metadata=tenant.md)).donor


async def _get(journeys, tenant):
    return (await journeys.GetJourney(pb.GetJourneyRequest(), metadata=tenant.md)).journey


def _journey(*stages, etag=""):
    """Stages as (id, name, [to, ...])."""
    return journey_pb2.Journey(etag=etag, stages=[
        journey_pb2.Stage(id=sid, name=name, description=f"{name} stage",
                          transitions=[journey_pb2.Transition(to=t, condition=f"to {t}") for t in tos])
        for sid, name, tos in stages])


SMALL = (("new", "New", ["engaged"]), ("engaged", "Engaged", ["giving", "new"]), ("giving", "Giving", ["engaged"]))


def _update(journeys, tenant, journey, paths=()):
    return journeys.UpdateJourney(pb.UpdateJourneyRequest(
        journey=journey, update_mask=field_mask_pb2.FieldMask(paths=list(paths))), metadata=tenant.md)


def _move(journeys, tenant, donor_id, to_stage, reason="because", etag=""):
    return journeys.MoveDonorStage(pb.MoveDonorStageRequest(donor_id=donor_id, to_stage=to_stage, reason=reason,
                                                            etag=etag), metadata=tenant.md)


async def _history(journeys, tenant, donor_id, **kw):
    return await journeys.ListDonorStageHistory(pb.ListDonorStageHistoryRequest(donor_id=donor_id, **kw),
                                                metadata=tenant.md)


async def _written(admin_db, org_id):
    """Everything a journey RPC may write, for 'nothing written' checks. The journey as the
    organization sees it: the seeding consumer may store the default (version 1) meanwhile."""
    row = dict(await admin_db.fetchrow(
        "SELECT (SELECT count(*) FROM crm.outbox WHERE tenant_id = $1::uuid"
        " AND routing_key <> 'crm.audit.batch_recorded') AS outbox,"
        " (SELECT count(*) FROM crm.donor_stage_history WHERE organization_id = $1::uuid) AS history,"
        " (SELECT coalesce(sum(version), 0) FROM crm.donors WHERE organization_id = $1::uuid) AS donor_versions,"
        " (SELECT coalesce(max(version), 0) FROM crm.journeys WHERE organization_id = $1::uuid) AS journey,"
        " (SELECT graph::text FROM crm.journeys WHERE organization_id = $1::uuid) AS graph", org_id))
    row["journey"] = row["journey"] or 1
    row["graph"] = json.loads(row["graph"]) if row["graph"] else DEFAULT_JOURNEY
    return row


# -- the graph ---------------------------------------------------------------------------------


async def test_update_journey_replaces_the_stages_and_moves_the_etag(journeys, tenant, admin_db):
    before = await _get(journeys, tenant)
    j = (await _update(journeys, tenant, _journey(*SMALL, etag=before.etag))).journey
    assert [s.id for s in j.stages] == ["new", "engaged", "giving"] and j.etag != before.etag
    got = await _get(journeys, tenant)
    assert got == j
    assert [t.to for t in got.stages[1].transitions] == ["giving", "new"]
    # a stale etag is refused and changes nothing
    err = await fails(_update(journeys, tenant, _journey(("only", "Only", []), etag=before.etag)),
                       grpc.StatusCode.ABORTED)
    assert error_reason(err) == "ETAG_MISMATCH"
    assert await _get(journeys, tenant) == j
    # without an etag (and with the explicit mask) it applies
    j2 = (await _update(journeys, tenant, _journey(("new", "New", ["x"]), ("x", "X", [])), ["stages"])).journey
    assert [s.id for s in j2.stages] == ["new", "x"]
    assert await admin_db.fetchval("SELECT count(*) FROM crm.outbox WHERE tenant_id = $1::uuid AND "
                                   "routing_key = 'crm.audit.recorded' AND aggregate_id = $1::text", tenant.org_id) == 2


async def test_names_are_trimmed_and_descriptions_kept(journeys, tenant):
    j = (await _update(journeys, tenant, journey_pb2.Journey(stages=[
        journey_pb2.Stage(id="a", name="  Spaced   name ", description="why")]))).journey
    assert (j.stages[0].name, j.stages[0].description, list(j.stages[0].transitions)) == ("Spaced name", "why", [])


@pytest.mark.parametrize("journey,paths,field", [
    (journey_pb2.Journey(), (), "journey.stages"),
    (_journey(("First Contact", "F", [])), (), "journey.stages[0].id"),
    (_journey(("1st", "F", [])), (), "journey.stages[0].id"),
    (_journey(("", "F", [])), (), "journey.stages[0].id"),
    (_journey(("a" * 65, "F", [])), (), "journey.stages[0].id"),
    (_journey(("a", "A", []), ("a", "Again", [])), (), "journey.stages[1].id"),
    (_journey(("a", "  ", [])), (), "journey.stages[0].name"),
    (_journey(("a", "A", ["b"]), ("b", "B", ["nowhere"])), (), "journey.stages[1].transitions[0].to"),
    (_journey(("a", "A", ["a"])), (), "journey.stages[0].transitions[0].to"),
    (_journey(("a", "A", ["b", "b"]), ("b", "B", [])), (), "journey.stages[0].transitions[1].to"),
    (journey_pb2.Journey(stages=[journey_pb2.Stage(id="a", name="A", description="d" * 2001)]), (),
     "journey.stages[0].description"),
    (_journey(("a", "A", [])), ("etag",), "update_mask"),
    (_journey(("a", "A", [])), ("stages.name",), "update_mask"),
])
async def test_update_journey_rejects_bad_graphs_and_writes_nothing(journeys, tenant, admin_db, journey, paths,
                                                                    field):
    before = await _written(admin_db, tenant.org_id)
    await invalid(_update(journeys, tenant, journey, paths), field)
    assert await _written(admin_db, tenant.org_id) == before
    assert [s.id for s in (await _get(journeys, tenant)).stages] == DEFAULT_IDS


async def test_every_graph_violation_is_reported_at_once(journeys, tenant):
    err = await invalid(_update(journeys, tenant, _journey(("Bad Id", "", ["missing"]))), "journey.stages[0].id")
    assert {"journey.stages[0].name", "journey.stages[0].transitions[0].to"} <= set(field_violations(err))


async def test_stages_donors_are_in_cannot_be_removed(journeys, stubs, tenant, admin_db):
    a = await _donor(stubs, tenant, journey_stage="cultivation")
    await _donor(stubs, tenant, journey_stage="cultivation")
    await _donor(stubs, tenant, journey_stage="lapsed")
    deleted = await _donor(stubs, tenant, journey_stage="major_donor")
    await stubs.donors.DeleteDonor(dpb.DeleteDonorRequest(id=deleted.id), metadata=tenant.md)
    before = await _written(admin_db, tenant.org_id)
    err = await fails(_update(journeys, tenant, _journey(*SMALL)), grpc.StatusCode.FAILED_PRECONDITION)
    assert error_reason(err) == "STAGE_IN_USE"
    assert "cultivation (2 donors)" in err.details() and "lapsed (1 donor)" in err.details()
    assert "major_donor" not in err.details()  # a deleted donor does not hold a stage
    assert await _written(admin_db, tenant.org_id) == before
    # keeping those stages (and dropping others, which no live donor is in) works
    j = (await _update(journeys, tenant, _journey(("cultivation", "Cultivation", ["lapsed"]),
                                                  ("lapsed", "Lapsed", ["cultivation"])))).journey
    assert [s.id for s in j.stages] == ["cultivation", "lapsed"]
    # once the donors moved on, their old stage may go
    await _move(journeys, tenant, a.id, "lapsed")
    await fails(_update(journeys, tenant, _journey(("lapsed", "Lapsed", []))), grpc.StatusCode.FAILED_PRECONDITION)


# -- moving donors ------------------------------------------------------------------------------


async def test_donors_move_only_along_transitions_with_history_event_and_audit(journeys, stubs, tenant, admin_db):
    donor = await _donor(stubs, tenant)
    assert donor.journey_stage == ""
    # a donor with no stage may be placed in any stage
    first = await _move(journeys, tenant, donor.id, "cultivation", reason="met at the gala", etag=donor.etag)
    assert first.donor.journey_stage == "cultivation" and first.donor.etag != donor.etag
    c = first.change
    assert (c.donor_id, c.from_stage, c.to_stage, c.reason, c.changed_by) == (
        donor.id, "", "cultivation", "met at the gala", tenant.user_id)
    assert c.id and c.change_time.seconds > 0
    second = await _move(journeys, tenant, donor.id, "solicitation", reason="ready for an ask")
    assert second.change.from_stage == "cultivation"
    # no transition leads from solicitation to prospect (or to itself)
    before = await _written(admin_db, tenant.org_id)
    for to in ("prospect", "solicitation", "major_donor"):
        err = await fails(_move(journeys, tenant, donor.id, to), grpc.StatusCode.FAILED_PRECONDITION)
        assert error_reason(err) == "INVALID_STAGE_TRANSITION" and "first_gift" in err.details()
    assert await _written(admin_db, tenant.org_id) == before
    got = (await stubs.donors.GetDonor(dpb.GetDonorRequest(id=donor.id), metadata=tenant.md)).donor
    assert got.journey_stage == "solicitation" and got.etag == second.donor.etag
    # history, newest first
    h = await _history(journeys, tenant, donor.id)
    assert [(x.from_stage, x.to_stage) for x in h.changes] == [("cultivation", "solicitation"), ("", "cultivation")]
    assert h.changes[1] == first.change and h.next_page_token == ""
    # the event through the outbox, and the audit entries
    rows = await admin_db.fetch("SELECT body FROM crm.outbox WHERE routing_key = 'crm.donor.stage_changed' "
                                "AND tenant_id = $1::uuid ORDER BY id", tenant.org_id)
    assert len(rows) == 2
    env = event_pb2.Event.FromString(rows[0]["body"])
    payload = crm_events_pb2.DonorStageChangedEvent()
    assert env.payload.Unpack(payload) and env.tenant_id == tenant.org_id
    assert (payload.change_id, payload.donor_id, payload.from_stage, payload.to_stage, payload.reason,
            payload.changed_by) == (first.change.id, donor.id, "", "cultivation", "met at the gala", tenant.user_id)
    assert payload.change_time == first.change.change_time
    assert await admin_db.fetchval("SELECT count(*) FROM crm.outbox WHERE routing_key = 'crm.audit.recorded' "
                                   "AND aggregate_id = $1", donor.id) == 3  # create + two moves


async def test_moves_follow_the_organizations_own_journey(journeys, stubs, tenant):
    await _update(journeys, tenant, _journey(*SMALL))
    donor = await _donor(stubs, tenant, journey_stage="new")
    await fails(_move(journeys, tenant, donor.id, "giving"), grpc.StatusCode.FAILED_PRECONDITION)
    await _move(journeys, tenant, donor.id, "engaged")
    await _move(journeys, tenant, donor.id, "giving")
    await invalid(_move(journeys, tenant, donor.id, "cultivation"), "to_stage")  # a default stage, not theirs


async def test_a_stale_donor_etag_is_aborted(journeys, stubs, tenant, admin_db):
    donor = await _donor(stubs, tenant)
    await _move(journeys, tenant, donor.id, "prospect")
    before = await _written(admin_db, tenant.org_id)
    err = await fails(_move(journeys, tenant, donor.id, "first_contact", etag=donor.etag), grpc.StatusCode.ABORTED)
    assert error_reason(err) == "ETAG_MISMATCH"
    assert await _written(admin_db, tenant.org_id) == before


async def test_a_deleted_or_unknown_donor_is_not_found(journeys, stubs, tenant):
    donor = await _donor(stubs, tenant)
    await stubs.donors.DeleteDonor(dpb.DeleteDonorRequest(id=donor.id), metadata=tenant.md)
    for donor_id in (donor.id, str(uuid.uuid4())):
        await fails(_move(journeys, tenant, donor_id, "prospect"), grpc.StatusCode.NOT_FOUND)
        await fails(_history(journeys, tenant, donor_id), grpc.StatusCode.NOT_FOUND)


@pytest.mark.parametrize("kw,field", [
    ({"donor_id": ""}, "donor_id"),
    ({"donor_id": "not-a-uuid"}, "donor_id"),
    ({"to_stage": ""}, "to_stage"),
    ({"to_stage": "  "}, "to_stage"),
    ({"to_stage": "no_such_stage"}, "to_stage"),
    ({"reason": ""}, "reason"),
    ({"reason": "   "}, "reason"),
    ({"reason": "r" * 1001}, "reason"),
])
async def test_move_rejects_bad_input_and_writes_nothing(journeys, stubs, tenant, admin_db, kw, field):
    donor = await _donor(stubs, tenant)
    args = {"donor_id": donor.id, "to_stage": "prospect", "reason": "why", **kw}
    before = await _written(admin_db, tenant.org_id)
    await invalid(_move(journeys, tenant, args["donor_id"], args["to_stage"], args["reason"]), field)
    assert await _written(admin_db, tenant.org_id) == before


async def test_history_pages_newest_first_without_gaps_or_repeats(journeys, stubs, tenant):
    donor = await _donor(stubs, tenant)
    other = await _donor(stubs, tenant)
    await _move(journeys, tenant, other.id, "prospect")
    made = [(await _move(journeys, tenant, donor.id, "cultivation", reason="0")).change.id]
    for i in range(1, 6):
        to = "solicitation" if i % 2 else "cultivation"
        made.append((await _move(journeys, tenant, donor.id, to, reason=str(i))).change.id)
    seen, token = [], ""
    while True:
        page = await _history(journeys, tenant, donor.id, page_size=2, page_token=token)
        assert len(page.changes) <= 2
        seen += [c.id for c in page.changes]
        token = page.next_page_token
        if not token:
            break
    assert seen == list(reversed(made))
    first = await _history(journeys, tenant, donor.id, page_size=2)
    # a token is bound to its donor; bad page sizes and tokens are INVALID_ARGUMENT
    await invalid(_history(journeys, tenant, other.id, page_token=first.next_page_token), "page_token")
    await invalid(_history(journeys, tenant, donor.id, page_token="garbage!"), "page_token")
    await invalid(_history(journeys, tenant, donor.id, page_size=-1), "page_size")
    await invalid(_history(journeys, tenant, ""), "donor_id")
    await invalid(_history(journeys, tenant, "nope"), "donor_id")
    assert len((await _history(journeys, tenant, donor.id, page_size=5000)).changes) == 6


# -- tenancy and permissions --------------------------------------------------------------------


async def test_another_tenant_sees_and_touches_nothing(journeys, stubs, tenant, other_tenant, admin_db):
    await _update(journeys, tenant, _journey(*SMALL))
    donor = await _donor(stubs, tenant, journey_stage="new")
    await _move(journeys, tenant, donor.id, "engaged")
    # the other tenant keeps its own (default) journey, and editing it leaves ours alone
    assert [s.id for s in (await _get(journeys, other_tenant)).stages] == DEFAULT_IDS
    await _update(journeys, other_tenant, _journey(("theirs", "Theirs", [])))
    assert [s.id for s in (await _get(journeys, tenant)).stages] == ["new", "engaged", "giving"]
    # our donor does not exist for them
    before = await _written(admin_db, tenant.org_id)
    await fails(_move(journeys, other_tenant, donor.id, "theirs"), grpc.StatusCode.NOT_FOUND)
    await fails(_history(journeys, other_tenant, donor.id), grpc.StatusCode.NOT_FOUND)
    assert await _written(admin_db, tenant.org_id) == before
    # and a token for one tenant with another's header is refused
    md = (("authorization", f"Bearer {tenant.access_token}"), ("x-tenant-id", other_tenant.org_id))
    await fails(journeys.GetJourney(pb.GetJourneyRequest(), metadata=md), grpc.StatusCode.PERMISSION_DENIED)
    await fails(journeys.GetJourney(pb.GetJourneyRequest()), grpc.StatusCode.UNAUTHENTICATED)
    # the stage history is row-level secured for the service's own role
    conn = await asyncpg.connect(plain_dsn(ServiceSettings().app_database_url("crm")))
    try:
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.tenant_id', $1, true)", other_tenant.org_id)
            assert await conn.fetchval("SELECT count(*) FROM crm.donor_stage_history") == 0
        async with conn.transaction():
            assert await conn.fetchval("SELECT count(*) FROM crm.donor_stage_history") == 0
    finally:
        await conn.close()


def test_roles_grant_the_journey_permissions():
    staff, viewer, admin = (roles.SYSTEM_ROLES[r] for r in ("staff", "viewer", "admin"))
    assert roles.holds(staff, "crm.journeys.read") and not roles.holds(staff, "crm.journeys.write")
    assert roles.holds(staff, "crm.donors.write")  # moves
    assert roles.holds(viewer, "crm.journeys.read") and not roles.holds(viewer, "crm.journeys.write")
    assert roles.holds(viewer, "crm.donors.read") and not roles.holds(viewer, "crm.donors.write")
    assert roles.holds(admin, "crm.journeys.write") and roles.holds(roles.SYSTEM_ROLES["owner"], "crm.journeys.write")


async def test_a_merge_moves_the_merged_donors_stage_history_to_the_survivor(journeys, stubs, tenant):
    survivor = await _donor(stubs, tenant, first_name="Keep")
    merged = await _donor(stubs, tenant, first_name="Fold")
    await _move(journeys, tenant, survivor.id, "prospect")
    await _move(journeys, tenant, merged.id, "cultivation")
    await stubs.donors.MergeDonors(dpb.MergeDonorsRequest(survivor_id=survivor.id, merged_id=merged.id),
                                   metadata=tenant.md)
    h = await _history(journeys, tenant, survivor.id)
    assert sorted(c.to_stage for c in h.changes) == ["cultivation", "prospect"]
    assert {c.donor_id for c in h.changes} == {survivor.id}
