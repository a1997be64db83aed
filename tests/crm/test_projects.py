"""Projects (campaigns): the rules, what they raised, status moves, tenancy."""

import uuid

import asyncpg
import grpc
import pytest
from givance.crm.v1 import donor_service_pb2 as dpb
from givance.crm.v1 import project_pb2
from givance.crm.v1 import project_service_pb2 as pb
from google.protobuf import field_mask_pb2, struct_pb2
from google.type import date_pb2

from chassis.settings import ServiceSettings, plain_dsn
from services.identity.domain import roles
from tests.helpers import day, error_reason, fails, gift, invalid, new_donor, usd

DRAFT, ACTIVE = project_pb2.PROJECT_STATUS_DRAFT, project_pb2.PROJECT_STATUS_ACTIVE
COMPLETED, CANCELLED = project_pb2.PROJECT_STATUS_COMPLETED, project_pb2.PROJECT_STATUS_CANCELLED


@pytest.fixture
def projects(stubs):
    return stubs.projects




def _new(request_id="", **kw):
    kw.setdefault("name", "Winter appeal")
    return pb.CreateProjectRequest(project=project_pb2.Project(**kw), request_id=request_id)


async def _create(projects, tenant, **kw):
    return (await projects.CreateProject(_new(**kw), metadata=tenant.md)).project


async def _get(projects, tenant, project_id):
    return (await projects.GetProject(pb.GetProjectRequest(id=project_id), metadata=tenant.md)).project


def _update(projects, tenant, project, paths):
    return projects.UpdateProject(pb.UpdateProjectRequest(
        project=project, update_mask=field_mask_pb2.FieldMask(paths=paths)), metadata=tenant.md)


async def _set_status(projects, tenant, project, status):
    return (await _update(projects, tenant, project_pb2.Project(id=project.id, status=status),
                          ["status"])).project


async def _written(admin_db, org_id):
    return await admin_db.fetchrow(
        "SELECT (SELECT count(*) FROM crm.projects WHERE organization_id = $1::uuid) AS projects,"
        " (SELECT coalesce(sum(version), 0) FROM crm.projects WHERE organization_id = $1::uuid) AS versions,"
        " (SELECT count(*) FROM crm.donations WHERE organization_id = $1::uuid) AS donations,"
        " (SELECT count(*) FROM crm.outbox WHERE tenant_id = $1::uuid"
        " AND routing_key <> 'crm.audit.batch_recorded') AS outbox", org_id)


def _amount(m):
    return (m.currency_code, m.units, m.nanos)


# -- create, get --------------------------------------------------------------------------------


async def test_create_and_get_a_project(projects, tenant, admin_db):
    settings = struct_pb2.Struct()
    settings.update({"goal_visible": True, "tiers": [25, 50]})
    p = await _create(projects, tenant, name="  Roof   fund ", description="A new roof",
                      target_amount=usd(5000, 500_000_000), start_date=day(2026, 1, 1),
                      end_date=day(2026, 1, 1), settings=settings)
    assert (p.name, p.description, p.currency_code, p.status) == ("Roof fund", "A new roof", "USD", DRAFT)
    assert _amount(p.target_amount) == ("USD", 5000, 500_000_000)
    assert _amount(p.raised_amount) == ("USD", 0, 0) and p.donor_count == 0
    assert (p.start_date, p.end_date) == (day(2026, 1, 1), day(2026, 1, 1))
    assert p.settings["goal_visible"] is True and list(p.settings["tiers"]) == [25, 50]
    assert p.organization_id == tenant.org_id and p.etag and p.create_time.seconds and not p.HasField("delete_time")
    assert await _get(projects, tenant, p.id) == p
    assert await admin_db.fetchval("SELECT target_amount::text FROM crm.projects WHERE id = $1::uuid",
                                   p.id) == "5000.50"
    assert await admin_db.fetchval("SELECT count(*) FROM crm.outbox WHERE routing_key = 'crm.audit.recorded' "
                                   "AND aggregate_id = $1", p.id) == 1


async def test_currency_comes_from_currency_code_else_the_target_else_usd(projects, tenant):
    assert (await _create(projects, tenant)).currency_code == "USD"
    assert (await _create(projects, tenant)).HasField("target_amount") is False
    eur = await _create(projects, tenant, target_amount=usd(100, currency="EUR"))
    assert eur.currency_code == "EUR" and _amount(eur.raised_amount) == ("EUR", 0, 0)
    gbp = await _create(projects, tenant, currency_code="GBP", status=ACTIVE)
    assert gbp.currency_code == "GBP" and gbp.status == ACTIVE


async def test_a_retried_create_with_request_id_returns_the_first_project(projects, tenant, admin_db):
    rid = uuid.uuid4().hex
    first = await _create(projects, tenant, request_id=rid, name="Once")
    again = await _create(projects, tenant, request_id=rid, name="Once")
    assert first == again
    assert await admin_db.fetchval("SELECT count(*) FROM crm.projects WHERE organization_id = $1::uuid",
                                   tenant.org_id) == 1
    assert await admin_db.fetchval("SELECT count(*) FROM crm.outbox WHERE routing_key = 'crm.audit.recorded' "
                                   "AND aggregate_id = $1", first.id) == 1


@pytest.mark.parametrize("kw,field", [
    ({"name": ""}, "project.name"),
    ({"name": "   "}, "project.name"),
    ({"name": "n" * 201}, "project.name"),
    ({"description": "d" * 20_001}, "project.description"),
    ({"target_amount": usd(-1)}, "project.target_amount"),
    ({"target_amount": usd(10, 5_000_000)}, "project.target_amount"),
    ({"target_amount": usd(10, -5)}, "project.target_amount"),
    ({"target_amount": usd(10_000_000_000)}, "project.target_amount"),
    ({"target_amount": usd(10, currency="usd")}, "project.currency_code"),
    ({"currency_code": "EUR", "target_amount": usd(10)}, "project.target_amount.currency_code"),
    ({"currency_code": "EURO"}, "project.currency_code"),
    ({"start_date": date_pb2.Date(year=2026, month=13, day=1)}, "project.start_date"),
    ({"end_date": date_pb2.Date(year=2026, month=2, day=30)}, "project.end_date"),
    ({"start_date": day(2026, 5, 2), "end_date": day(2026, 5, 1)}, "project.end_date"),
    ({"status": COMPLETED}, "project.status"),
    ({"status": CANCELLED}, "project.status"),
    ({"status": 9}, "project.status"),
    ({"request_id": "r" * 101}, "request_id"),
])
async def test_create_rejects_bad_input_and_writes_nothing(projects, tenant, admin_db, kw, field):
    before = await _written(admin_db, tenant.org_id)
    await invalid(projects.CreateProject(_new(**kw), metadata=tenant.md), field)
    assert await _written(admin_db, tenant.org_id) == before


async def test_get_bad_or_unknown_ids(projects, tenant):
    await invalid(projects.GetProject(pb.GetProjectRequest(id="nope"), metadata=tenant.md), "id")
    await invalid(projects.GetProject(pb.GetProjectRequest(), metadata=tenant.md), "id")
    await fails(projects.GetProject(pb.GetProjectRequest(id=str(uuid.uuid4())), metadata=tenant.md),
                 grpc.StatusCode.NOT_FOUND)


# -- what a project raised ------------------------------------------------------------------------


async def test_raised_amount_and_donor_count_come_from_its_donations(projects, stubs, tenant):
    p = await _create(projects, tenant, status=ACTIVE, target_amount=usd(1000))
    other = await _create(projects, tenant, status=ACTIVE)
    a = (await stubs.donors.CreateDonor(new_donor(first_name="A"), metadata=tenant.md)).donor
    b = (await stubs.donors.CreateDonor(new_donor(first_name="B"), metadata=tenant.md)).donor
    c = (await stubs.donors.CreateDonor(new_donor(first_name="C"), metadata=tenant.md)).donor
    for donor, amount, project in ((a, usd(100, 500_000_000), p), (a, usd(20), p), (b, usd(5, 10_000_000), p),
                                   (b, usd(40, currency="EUR"), p),  # counted as a donor, not added
                                   (c, usd(999), other), (c, usd(7), None)):
        await stubs.donations.RecordDonation(gift(donor.id, amount, project_id=project.id if project else ""),
                                             metadata=tenant.md)
    got = await _get(projects, tenant, p.id)
    assert _amount(got.raised_amount) == ("USD", 125, 510_000_000) and got.donor_count == 2
    listed = {x.id: x for x in (await projects.ListProjects(pb.ListProjectsRequest(), metadata=tenant.md)).projects}
    assert listed[p.id] == got
    assert _amount(listed[other.id].raised_amount) == ("USD", 999, 0) and listed[other.id].donor_count == 1
    # a deleted donor's gifts still count (donations stay)
    await stubs.donors.DeleteDonor(dpb.DeleteDonorRequest(id=b.id), metadata=tenant.md)
    assert (await _get(projects, tenant, p.id)).donor_count == 2


async def test_donations_to_cancelled_projects_are_refused(projects, stubs, tenant, admin_db):
    donor = (await stubs.donors.CreateDonor(new_donor(), metadata=tenant.md)).donor
    draft = await _create(projects, tenant)
    active = await _create(projects, tenant, status=ACTIVE)
    completed = await _set_status(projects, tenant, await _create(projects, tenant, status=ACTIVE), COMPLETED)
    cancelled = await _set_status(projects, tenant, await _create(projects, tenant), CANCELLED)
    for p in (draft, active, completed):  # pledges before launch and late gifts count
        await stubs.donations.RecordDonation(gift(donor.id, project_id=p.id), metadata=tenant.md)
        assert (await _get(projects, tenant, p.id)).donor_count == 1
    before = await _written(admin_db, tenant.org_id)
    err = await fails(stubs.donations.RecordDonation(gift(donor.id, project_id=cancelled.id), metadata=tenant.md),
                       grpc.StatusCode.FAILED_PRECONDITION)
    assert error_reason(err) == "PROJECT_CANCELLED"
    assert await _written(admin_db, tenant.org_id) == before


# -- list -----------------------------------------------------------------------------------------


async def test_list_filters_by_status_and_pages_newest_first(projects, tenant):
    made = []
    for i in range(5):
        made.append(await _create(projects, tenant, name=f"P{i}", status=ACTIVE if i % 2 else DRAFT))
    gone = await _create(projects, tenant, name="Deleted")
    await projects.DeleteProject(pb.DeleteProjectRequest(id=gone.id), metadata=tenant.md)
    seen, token = [], ""
    while True:
        page = await projects.ListProjects(pb.ListProjectsRequest(page_size=2, page_token=token), metadata=tenant.md)
        assert len(page.projects) <= 2
        seen += [p.id for p in page.projects]
        token = page.next_page_token
        if not token:
            break
    assert seen == [p.id for p in reversed(made)]
    active = await projects.ListProjects(pb.ListProjectsRequest(status=ACTIVE), metadata=tenant.md)
    assert [p.name for p in active.projects] == ["P3", "P1"] and active.next_page_token == ""
    drafts = await projects.ListProjects(pb.ListProjectsRequest(status=DRAFT, page_size=1), metadata=tenant.md)
    assert [p.name for p in drafts.projects] == ["P4"]
    assert not (await projects.ListProjects(pb.ListProjectsRequest(status=CANCELLED), metadata=tenant.md)).projects
    # a token is bound to its filter; bad sizes, tokens and statuses are INVALID_ARGUMENT
    await invalid(projects.ListProjects(pb.ListProjectsRequest(status=ACTIVE, page_token=drafts.next_page_token),
                                         metadata=tenant.md), "page_token")
    await invalid(projects.ListProjects(pb.ListProjectsRequest(page_token="%%%"), metadata=tenant.md), "page_token")
    await invalid(projects.ListProjects(pb.ListProjectsRequest(page_size=-1), metadata=tenant.md), "page_size")
    await invalid(projects.ListProjects(pb.ListProjectsRequest(status=42), metadata=tenant.md), "status")


# -- update, status moves, delete ------------------------------------------------------------------


async def test_update_changes_only_the_masked_fields(projects, tenant, admin_db):
    p = await _create(projects, tenant, description="Keep me", target_amount=usd(100), start_date=day(2026, 1, 1))
    u = (await _update(projects, tenant, project_pb2.Project(
        id=p.id, etag=p.etag, name="Renamed", description="ignored", target_amount=usd(250, 250_000_000),
        end_date=day(2026, 3, 1), start_date=day(2030, 7, 1)),  # not masked: ignored
        ["name", "target_amount", "end_date"])).project
    assert (u.name, u.description, _amount(u.target_amount)) == ("Renamed", "Keep me", ("USD", 250, 250_000_000))
    assert (u.start_date, u.end_date, u.status) == (day(2026, 1, 1), day(2026, 3, 1), DRAFT)
    assert u.etag != p.etag and await _get(projects, tenant, p.id) == u
    # clearing the target
    u2 = (await _update(projects, tenant, project_pb2.Project(id=p.id), ["target_amount"])).project
    assert not u2.HasField("target_amount")
    # an empty mask replaces every writable field (status is then required)
    full = (await _update(projects, tenant, project_pb2.Project(id=p.id, name="All", status=ACTIVE), [])).project
    assert (full.name, full.description, full.status, full.HasField("start_date")) == ("All", "", ACTIVE, False)
    assert await admin_db.fetchval("SELECT count(*) FROM crm.outbox WHERE routing_key = 'crm.audit.recorded' "
                                   "AND aggregate_id = $1", p.id) == 4


async def test_a_stale_etag_is_aborted(projects, tenant, admin_db):
    p = await _create(projects, tenant)
    await _update(projects, tenant, project_pb2.Project(id=p.id, name="New"), ["name"])
    before = await _written(admin_db, tenant.org_id)
    for call in (_update(projects, tenant, project_pb2.Project(id=p.id, etag=p.etag, name="Late"), ["name"]),
                 projects.DeleteProject(pb.DeleteProjectRequest(id=p.id, etag=p.etag), metadata=tenant.md)):
        err = await fails(call, grpc.StatusCode.ABORTED)
        assert error_reason(err) == "ETAG_MISMATCH"
    assert await _written(admin_db, tenant.org_id) == before


@pytest.mark.parametrize("patch,paths,field", [
    ({"name": ""}, ["name"], "project.name"),
    ({"target_amount": usd(-5)}, ["target_amount"], "project.target_amount"),
    ({"target_amount": usd(5, currency="EUR")}, ["target_amount"], "project.target_amount.currency_code"),
    ({"end_date": day(2025, 12, 31)}, ["end_date"], "project.end_date"),  # before the stored start_date
    ({"start_date": date_pb2.Date(year=2026, month=0, day=0)}, ["start_date"], "project.start_date"),
    ({}, ["status"], "project.status"),
    ({"status": 9}, ["status"], "project.status"),
    ({"currency_code": "EUR"}, ["currency_code"], "update_mask"),
    ({"name": "x"}, ["raised_amount"], "update_mask"),
    ({"name": "x"}, ["nope"], "update_mask"),
    ({"name": "x"}, [], "project.status"),  # a full replace needs a status
])
async def test_update_rejects_bad_input_and_writes_nothing(projects, tenant, admin_db, patch, paths, field):
    p = await _create(projects, tenant, start_date=day(2026, 1, 1))
    before = await _written(admin_db, tenant.org_id)
    await invalid(_update(projects, tenant, project_pb2.Project(id=p.id, **patch), paths), field)
    assert await _written(admin_db, tenant.org_id) == before
    assert await _get(projects, tenant, p.id) == p


async def test_update_and_delete_bad_or_unknown_ids(projects, tenant):
    await invalid(_update(projects, tenant, project_pb2.Project(id="nope", name="x"), ["name"]), "project.id")
    await invalid(projects.DeleteProject(pb.DeleteProjectRequest(id="nope"), metadata=tenant.md), "id")
    unknown = str(uuid.uuid4())
    await fails(_update(projects, tenant, project_pb2.Project(id=unknown, name="x"), ["name"]),
                 grpc.StatusCode.NOT_FOUND)
    await fails(projects.DeleteProject(pb.DeleteProjectRequest(id=unknown), metadata=tenant.md),
                 grpc.StatusCode.NOT_FOUND)


ALLOWED = {(DRAFT, ACTIVE), (DRAFT, CANCELLED), (ACTIVE, COMPLETED), (ACTIVE, CANCELLED)}
STATUSES = (DRAFT, ACTIVE, COMPLETED, CANCELLED)


async def _in_status(projects, tenant, status):
    p = await _create(projects, tenant, status=ACTIVE if status in (ACTIVE, COMPLETED) else DRAFT)
    if p.status != status:
        p = await _set_status(projects, tenant, p, status)
    return p


@pytest.mark.parametrize("old", STATUSES)
async def test_status_moves_only_along_the_allowed_transitions(projects, tenant, admin_db, old):
    for new in STATUSES:
        p = await _in_status(projects, tenant, old)
        call = _update(projects, tenant, project_pb2.Project(id=p.id, status=new, name="Renamed"), ["status", "name"])
        if (old, new) in ALLOWED or old == new:
            assert (await call).project.status == new
            continue
        before = await _written(admin_db, tenant.org_id)
        err = await fails(call, grpc.StatusCode.FAILED_PRECONDITION)
        assert error_reason(err) == "INVALID_STATUS_TRANSITION", (old, new)
        assert await _written(admin_db, tenant.org_id) == before
        assert await _get(projects, tenant, p.id) == p


async def test_delete_is_soft_and_the_project_takes_no_more_gifts(projects, stubs, tenant, admin_db):
    p = await _create(projects, tenant, status=ACTIVE)
    donor = (await stubs.donors.CreateDonor(new_donor(), metadata=tenant.md)).donor
    await stubs.donations.RecordDonation(gift(donor.id, project_id=p.id), metadata=tenant.md)
    deleted = (await projects.DeleteProject(pb.DeleteProjectRequest(id=p.id, etag=p.etag),
                                            metadata=tenant.md)).project
    assert deleted.HasField("delete_time") and deleted.etag != p.etag and deleted.donor_count == 1
    await fails(projects.GetProject(pb.GetProjectRequest(id=p.id), metadata=tenant.md), grpc.StatusCode.NOT_FOUND)
    await fails(projects.DeleteProject(pb.DeleteProjectRequest(id=p.id), metadata=tenant.md),
                 grpc.StatusCode.NOT_FOUND)
    await fails(_update(projects, tenant, project_pb2.Project(id=p.id, name="x"), ["name"]),
                 grpc.StatusCode.NOT_FOUND)
    assert p.id not in {x.id for x in (await projects.ListProjects(pb.ListProjectsRequest(),
                                                                   metadata=tenant.md)).projects}
    await invalid(stubs.donations.RecordDonation(gift(donor.id, project_id=p.id), metadata=tenant.md),
                   "donation.project_id")
    assert await admin_db.fetchval("SELECT count(*) FROM crm.donations WHERE project_id = $1::uuid", p.id) == 1
    assert await admin_db.fetchval("SELECT deleted_at IS NOT NULL FROM crm.projects WHERE id = $1::uuid", p.id)


# -- tenancy and permissions --------------------------------------------------------------------------


async def test_another_tenant_sees_and_touches_nothing(projects, stubs, tenant, other_tenant, admin_db):
    p = await _create(projects, tenant, status=ACTIVE)
    donor = (await stubs.donors.CreateDonor(new_donor(), metadata=tenant.md)).donor
    await stubs.donations.RecordDonation(gift(donor.id, project_id=p.id), metadata=tenant.md)
    theirs = (await stubs.donors.CreateDonor(new_donor(), metadata=other_tenant.md)).donor
    before = await _written(admin_db, tenant.org_id)
    for call in (projects.GetProject(pb.GetProjectRequest(id=p.id), metadata=other_tenant.md),
                 _update(projects, other_tenant, project_pb2.Project(id=p.id, name="Mallory"), ["name"]),
                 projects.DeleteProject(pb.DeleteProjectRequest(id=p.id), metadata=other_tenant.md)):
        await fails(call, grpc.StatusCode.NOT_FOUND)
    for status in (project_pb2.PROJECT_STATUS_UNSPECIFIED, ACTIVE):
        listed = await projects.ListProjects(pb.ListProjectsRequest(status=status), metadata=other_tenant.md)
        assert not listed.projects and listed.next_page_token == ""
    # their gift cannot name our project (it does not exist for them)
    await invalid(stubs.donations.RecordDonation(gift(theirs.id, project_id=p.id), metadata=other_tenant.md),
                   "donation.project_id")
    assert await _written(admin_db, tenant.org_id) == before
    assert (await _get(projects, tenant, p.id)).donor_count == 1
    md = (("authorization", f"Bearer {tenant.access_token}"), ("x-tenant-id", other_tenant.org_id))
    await fails(projects.ListProjects(pb.ListProjectsRequest(), metadata=md), grpc.StatusCode.PERMISSION_DENIED)
    await fails(projects.ListProjects(pb.ListProjectsRequest()), grpc.StatusCode.UNAUTHENTICATED)
    conn = await asyncpg.connect(plain_dsn(ServiceSettings().app_database_url("crm")))
    try:
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.tenant_id', $1, true)", other_tenant.org_id)
            assert await conn.fetchval("SELECT count(*) FROM crm.projects WHERE id = $1::uuid", p.id) == 0
    finally:
        await conn.close()


def test_roles_grant_the_project_permissions():
    staff, viewer = roles.SYSTEM_ROLES["staff"], roles.SYSTEM_ROLES["viewer"]
    assert roles.holds(staff, "crm.projects.read") and roles.holds(staff, "crm.projects.write")
    assert roles.holds(viewer, "crm.projects.read") and not roles.holds(viewer, "crm.projects.write")
    for role in ("admin", "owner"):
        assert roles.holds(roles.SYSTEM_ROLES[role], "crm.projects.write")
