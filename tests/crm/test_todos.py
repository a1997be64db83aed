"""Todos: the rules, status moves and who completed them, filters and pages, tenancy."""

import uuid

import grpc
import pytest
from givance.crm.v1 import donor_service_pb2 as dpb
from givance.crm.v1 import project_pb2, todo_pb2
from givance.crm.v1 import project_service_pb2 as ppb
from givance.crm.v1 import todo_service_pb2 as pb
from google.protobuf import field_mask_pb2
from google.type import date_pb2, decimal_pb2

from tests.helpers import day, error_reason, fails, invalid, new_donor

PENDING, IN_PROGRESS = todo_pb2.TODO_STATUS_PENDING, todo_pb2.TODO_STATUS_IN_PROGRESS
COMPLETED, CANCELLED = todo_pb2.TODO_STATUS_COMPLETED, todo_pb2.TODO_STATUS_CANCELLED
LOW, MEDIUM, HIGH = todo_pb2.TODO_PRIORITY_LOW, todo_pb2.TODO_PRIORITY_MEDIUM, todo_pb2.TODO_PRIORITY_HIGH


@pytest.fixture
def api(stubs):
    return stubs.todos, stubs.projects


@pytest.fixture
def todos(api):
    return api[0]


@pytest.fixture
def projects(api):
    return api[1]




def _new(request_id="", **kw):
    kw.setdefault("title", "Call back")
    return pb.CreateTodoRequest(todo=todo_pb2.Todo(**kw), request_id=request_id)


async def _create(todos, tenant, **kw):
    return (await todos.CreateTodo(_new(**kw), metadata=tenant.md)).todo


async def _get(todos, tenant, todo_id):
    return (await todos.GetTodo(pb.GetTodoRequest(id=todo_id), metadata=tenant.md)).todo


def _update(todos, tenant, todo, paths):
    return todos.UpdateTodo(pb.UpdateTodoRequest(todo=todo, update_mask=field_mask_pb2.FieldMask(paths=paths)),
                            metadata=tenant.md)


def _move(todos, tenant, verb, todo_id, etag=""):
    method, request = {
        "start": (todos.StartTodo, pb.StartTodoRequest), "complete": (todos.CompleteTodo, pb.CompleteTodoRequest),
        "cancel": (todos.CancelTodo, pb.CancelTodoRequest),
    }[verb]
    return method(request(id=todo_id, etag=etag), metadata=tenant.md)


async def _list(todos, tenant, **kw):
    return await todos.ListTodos(pb.ListTodosRequest(**kw), metadata=tenant.md)


async def _donor(stubs, tenant, **kw):
    return (await stubs.donors.CreateDonor(new_donor(**kw), metadata=tenant.md)).donor


async def _project(projects, tenant, name="Roof fund"):
    return (await projects.CreateProject(ppb.CreateProjectRequest(project=project_pb2.Project(name=name)),
                                         metadata=tenant.md)).project


async def _written(admin_db, org_id):
    return await admin_db.fetchrow(
        "SELECT (SELECT count(*) FROM crm.todos WHERE organization_id = $1::uuid) AS todos,"
        " (SELECT coalesce(string_agg(t::text, '|' ORDER BY id), '') FROM crm.todos t"
        "  WHERE organization_id = $1::uuid) AS rows,"
        " (SELECT count(*) FROM crm.outbox WHERE tenant_id = $1::uuid"
        " AND routing_key <> 'crm.audit.batch_recorded') AS outbox", org_id)


def _conf(value):
    return decimal_pb2.Decimal(value=value)


# -- create, get --------------------------------------------------------------------------------


async def test_create_and_get_a_todo(todos, projects, stubs, tenant, admin_db):
    donor = await _donor(stubs, tenant)
    project = await _project(projects, tenant)
    assignee = tenant.user_id  # the caller may always assign to themself (other members: test_todo_assignee.py)
    t = await _create(todos, tenant, title="  Thank   Ada ", description=" For the gift ", due_date=day(2026, 12, 1),
                      priority=HIGH, donor_id=donor.id, project_id=project.id, assignee_id=assignee)
    assert (t.title, t.description, t.due_date, t.priority, t.status) == (
        "Thank Ada", "For the gift", day(2026, 12, 1), HIGH, PENDING)
    assert (t.donor_id, t.project_id, t.assignee_id, t.creator_id) == (donor.id, project.id, assignee, tenant.user_id)
    assert t.organization_id == tenant.org_id and t.etag and t.create_time.seconds
    assert not t.is_ai_generated and not t.HasField("ai_confidence") and not t.ai_reasoning
    assert not t.HasField("complete_time") and not t.completer_id
    assert await _get(todos, tenant, t.id) == t
    assert await admin_db.fetchval("SELECT count(*) FROM crm.outbox WHERE routing_key = 'crm.audit.recorded' "
                                   "AND aggregate_id = $1", t.id) == 1


async def test_priority_defaults_to_medium_and_links_are_optional(todos, tenant):
    t = await _create(todos, tenant)
    assert (t.priority, t.status, t.donor_id, t.project_id, t.assignee_id) == (MEDIUM, PENDING, "", "", "")
    assert not t.HasField("due_date")
    assert (await _create(todos, tenant, status=PENDING)).status == PENDING


async def test_ai_generated_todos_carry_reasoning_and_a_two_decimal_confidence(todos, tenant, admin_db):
    t = await _create(todos, tenant, is_ai_generated=True, ai_reasoning="No gift in 13 months",
                      ai_confidence=_conf("0.8"))
    assert (t.is_ai_generated, t.ai_reasoning, t.ai_confidence.value) == (True, "No gift in 13 months", "0.80")
    assert await admin_db.fetchval("SELECT ai_confidence::text FROM crm.todos WHERE id = $1::uuid", t.id) == "0.80"
    for edge in ("0", "1.00"):
        assert (await _create(todos, tenant, is_ai_generated=True, ai_confidence=_conf(edge))).HasField(
            "ai_confidence")


async def test_a_retried_create_with_request_id_returns_the_first_todo(todos, tenant, admin_db):
    rid = uuid.uuid4().hex
    first = await _create(todos, tenant, request_id=rid, title="Once")
    assert await _create(todos, tenant, request_id=rid, title="Once") == first
    assert (await _written(admin_db, tenant.org_id))["todos"] == 1
    assert await admin_db.fetchval("SELECT count(*) FROM crm.outbox WHERE routing_key = 'crm.audit.recorded' "
                                   "AND aggregate_id = $1", first.id) == 1


@pytest.mark.parametrize("kw,field", [
    ({"title": ""}, "todo.title"),
    ({"title": "   "}, "todo.title"),
    ({"title": "t" * 501}, "todo.title"),
    ({"description": "d" * 20_001}, "todo.description"),
    ({"due_date": date_pb2.Date(year=2026, month=2, day=30)}, "todo.due_date"),
    ({"priority": 9}, "todo.priority"),
    ({"status": IN_PROGRESS}, "todo.status"),
    ({"status": COMPLETED}, "todo.status"),
    ({"status": 9}, "todo.status"),
    ({"donor_id": "nope"}, "todo.donor_id"),
    ({"donor_id": "00000000-0000-0000-0000-000000000009"}, "todo.donor_id"),
    ({"project_id": "nope"}, "todo.project_id"),
    ({"project_id": "00000000-0000-0000-0000-000000000009"}, "todo.project_id"),
    ({"assignee_id": "someone"}, "todo.assignee_id"),
    ({"assignee_id": "00000000-0000-0000-0000-000000000009"}, "todo.assignee_id"),
    ({"ai_confidence": _conf("0.5")}, "todo.ai_confidence"),
    ({"ai_reasoning": "because"}, "todo.ai_reasoning"),
    ({"is_ai_generated": True, "ai_confidence": _conf("1.01")}, "todo.ai_confidence"),
    ({"is_ai_generated": True, "ai_confidence": _conf("-0.1")}, "todo.ai_confidence"),
    ({"is_ai_generated": True, "ai_confidence": _conf("0.555")}, "todo.ai_confidence"),
    ({"is_ai_generated": True, "ai_confidence": _conf("high")}, "todo.ai_confidence"),
    ({"is_ai_generated": True, "ai_confidence": _conf("NaN")}, "todo.ai_confidence"),
    ({"is_ai_generated": True, "ai_reasoning": "r" * 20_001}, "todo.ai_reasoning"),
    ({"request_id": "r" * 101}, "request_id"),
])
async def test_create_rejects_bad_input_and_writes_nothing(todos, tenant, admin_db, kw, field):
    before = await _written(admin_db, tenant.org_id)
    await invalid(todos.CreateTodo(_new(**kw), metadata=tenant.md), field)
    assert await _written(admin_db, tenant.org_id) == before


async def test_deleted_donors_and_projects_cannot_be_linked(todos, projects, stubs, tenant, admin_db):
    donor = await _donor(stubs, tenant)
    await stubs.donors.DeleteDonor(dpb.DeleteDonorRequest(id=donor.id), metadata=tenant.md)
    project = await _project(projects, tenant)
    await projects.DeleteProject(ppb.DeleteProjectRequest(id=project.id), metadata=tenant.md)
    before = await _written(admin_db, tenant.org_id)
    await invalid(todos.CreateTodo(_new(donor_id=donor.id), metadata=tenant.md), "todo.donor_id")
    await invalid(todos.CreateTodo(_new(project_id=project.id), metadata=tenant.md), "todo.project_id")
    assert await _written(admin_db, tenant.org_id) == before


async def test_get_bad_or_unknown_ids(todos, tenant):
    await invalid(todos.GetTodo(pb.GetTodoRequest(id=""), metadata=tenant.md), "id")
    await invalid(todos.GetTodo(pb.GetTodoRequest(id="nope"), metadata=tenant.md), "id")
    await fails(todos.GetTodo(pb.GetTodoRequest(id=str(uuid.uuid4())), metadata=tenant.md),
                 grpc.StatusCode.NOT_FOUND)


# -- status moves ------------------------------------------------------------------------------


async def _in_status(todos, tenant, status):
    t = await _create(todos, tenant)
    if status == IN_PROGRESS:
        t = (await _move(todos, tenant, "start", t.id)).todo
    elif status == COMPLETED:
        t = (await _move(todos, tenant, "complete", t.id)).todo
    elif status == CANCELLED:
        t = (await _move(todos, tenant, "cancel", t.id)).todo
    assert t.status == status
    return t


_ALLOWED = {(PENDING, "start"): IN_PROGRESS, (PENDING, "complete"): COMPLETED, (PENDING, "cancel"): CANCELLED,
            (IN_PROGRESS, "complete"): COMPLETED, (IN_PROGRESS, "cancel"): CANCELLED}


@pytest.mark.parametrize("old", [PENDING, IN_PROGRESS, COMPLETED, CANCELLED])
@pytest.mark.parametrize("verb", ["start", "complete", "cancel"])
async def test_status_moves_only_along_the_allowed_transitions(todos, tenant, admin_db, old, verb):
    t = await _in_status(todos, tenant, old)
    if (old, verb) in _ALLOWED:
        moved = (await _move(todos, tenant, verb, t.id, t.etag)).todo
        assert moved.status == _ALLOWED[(old, verb)] and moved.etag != t.etag
        assert moved.HasField("complete_time") == (moved.status == COMPLETED)
        assert await admin_db.fetchval("SELECT count(*) FROM crm.outbox WHERE routing_key = 'crm.audit.recorded' "
                                       "AND aggregate_id = $1", t.id) >= 2
    else:
        before = await _written(admin_db, tenant.org_id)
        err = await fails(_move(todos, tenant, verb, t.id), grpc.StatusCode.FAILED_PRECONDITION)
        assert error_reason(err) == "INVALID_STATUS_TRANSITION"
        assert await _written(admin_db, tenant.org_id) == before
        assert await _get(todos, tenant, t.id) == t


async def test_completion_records_who_and_when(todos, tenant, admin_db):
    assignee = tenant.user_id
    t = await _in_status(todos, tenant, IN_PROGRESS)
    t = (await _update(todos, tenant, todo_pb2.Todo(id=t.id, assignee_id=assignee), ["assignee_id"])).todo
    done = (await _move(todos, tenant, "complete", t.id)).todo
    assert (done.status, done.completer_id, done.assignee_id, done.creator_id) == (
        COMPLETED, tenant.user_id, assignee, tenant.user_id)
    row = await admin_db.fetchrow("SELECT completed_by::text, completed_at, updated_at FROM crm.todos "
                                  "WHERE id = $1::uuid", t.id)
    assert row["completed_by"] == tenant.user_id
    assert done.complete_time.ToDatetime().replace(tzinfo=row["completed_at"].tzinfo) == row["completed_at"]
    assert row["completed_at"] >= t.create_time.ToDatetime().replace(tzinfo=row["completed_at"].tzinfo)
    cancelled = (await _move(todos, tenant, "cancel", (await _create(todos, tenant)).id)).todo
    assert not cancelled.HasField("complete_time") and not cancelled.completer_id


@pytest.mark.parametrize("verb", ["start", "complete", "cancel"])
async def test_moves_check_ids_and_etags(todos, tenant, admin_db, verb):
    t = await _create(todos, tenant)
    await invalid(_move(todos, tenant, verb, ""), "id")
    await invalid(_move(todos, tenant, verb, "nope"), "id")
    await fails(_move(todos, tenant, verb, str(uuid.uuid4())), grpc.StatusCode.NOT_FOUND)
    before = await _written(admin_db, tenant.org_id)
    await fails(_move(todos, tenant, verb, t.id, 'W/"99"'), grpc.StatusCode.ABORTED)
    assert await _written(admin_db, tenant.org_id) == before


# -- update, delete ----------------------------------------------------------------------------


async def test_update_changes_only_the_masked_fields(todos, projects, stubs, tenant, admin_db):
    donor = await _donor(stubs, tenant)
    project = await _project(projects, tenant)
    t = await _create(todos, tenant, title="Old", description="Keep", donor_id=donor.id, priority=LOW,
                      is_ai_generated=True, ai_confidence=_conf("0.50"))
    u = (await _update(todos, tenant, todo_pb2.Todo(id=t.id, etag=t.etag, title="New", project_id=project.id,
                                                    due_date=day(2027, 1, 2), priority=HIGH, description="Gone"),
                       ["title", "project_id", "due_date", "priority"])).todo
    assert (u.title, u.description, u.donor_id, u.project_id, u.due_date, u.priority) == (
        "New", "Keep", donor.id, project.id, day(2027, 1, 2), HIGH)
    assert u.is_ai_generated and u.ai_confidence.value == "0.50" and u.etag != t.etag
    cleared = (await _update(todos, tenant, todo_pb2.Todo(id=t.id), ["donor_id", "project_id", "due_date"])).todo
    assert (cleared.donor_id, cleared.project_id, cleared.HasField("due_date")) == ("", "", False)
    audit = await admin_db.fetchval("SELECT count(*) FROM crm.outbox WHERE routing_key = 'crm.audit.recorded' "
                                    "AND aggregate_id = $1", t.id)
    assert audit == 3


async def test_a_stale_etag_is_aborted(todos, tenant, admin_db):
    t = await _create(todos, tenant)
    await _update(todos, tenant, todo_pb2.Todo(id=t.id, etag=t.etag, title="Second"), ["title"])
    before = await _written(admin_db, tenant.org_id)
    await fails(_update(todos, tenant, todo_pb2.Todo(id=t.id, etag=t.etag, title="Third"), ["title"]),
                 grpc.StatusCode.ABORTED)
    await fails(todos.DeleteTodo(pb.DeleteTodoRequest(id=t.id, etag=t.etag), metadata=tenant.md),
                 grpc.StatusCode.ABORTED)
    assert await _written(admin_db, tenant.org_id) == before


@pytest.mark.parametrize("patch,paths,field", [
    ({"title": ""}, ["title"], "todo.title"),
    ({"title": "t" * 501}, ["title"], "todo.title"),
    ({"description": "d" * 20_001}, ["description"], "todo.description"),
    ({"due_date": date_pb2.Date(year=2026, month=13, day=1)}, ["due_date"], "todo.due_date"),
    ({"priority": 7}, ["priority"], "todo.priority"),
    ({"donor_id": "nope"}, ["donor_id"], "todo.donor_id"),
    ({"donor_id": "00000000-0000-0000-0000-000000000009"}, ["donor_id"], "todo.donor_id"),
    ({"project_id": "nope"}, ["project_id"], "todo.project_id"),
    ({"project_id": "00000000-0000-0000-0000-000000000009"}, ["project_id"], "todo.project_id"),
    ({"assignee_id": "x"}, ["assignee_id"], "todo.assignee_id"),
    ({"assignee_id": "00000000-0000-0000-0000-000000000009"}, ["assignee_id"], "todo.assignee_id"),
    ({"title": ""}, [], "todo.title"),
    ({"status": COMPLETED}, ["status"], "update_mask"),
    ({"is_ai_generated": True}, ["is_ai_generated"], "update_mask"),
    ({"ai_confidence": _conf("0.5")}, ["ai_confidence"], "update_mask"),
    ({"creator_id": str(uuid.uuid4())}, ["creator_id"], "update_mask"),
])
async def test_update_rejects_bad_input_and_writes_nothing(todos, tenant, admin_db, patch, paths, field):
    t = await _create(todos, tenant)
    before = await _written(admin_db, tenant.org_id)
    await invalid(_update(todos, tenant, todo_pb2.Todo(id=t.id, **patch), paths), field)
    assert await _written(admin_db, tenant.org_id) == before


async def test_update_and_delete_bad_or_unknown_ids(todos, tenant):
    await invalid(_update(todos, tenant, todo_pb2.Todo(title="x"), ["title"]), "todo.id")
    await invalid(_update(todos, tenant, todo_pb2.Todo(id="nope", title="x"), ["title"]), "todo.id")
    await fails(_update(todos, tenant, todo_pb2.Todo(id=str(uuid.uuid4()), title="x"), ["title"]),
                 grpc.StatusCode.NOT_FOUND)
    await invalid(todos.DeleteTodo(pb.DeleteTodoRequest(id=""), metadata=tenant.md), "id")
    await invalid(todos.DeleteTodo(pb.DeleteTodoRequest(id="nope"), metadata=tenant.md), "id")
    await fails(todos.DeleteTodo(pb.DeleteTodoRequest(id=str(uuid.uuid4())), metadata=tenant.md),
                 grpc.StatusCode.NOT_FOUND)


async def test_delete_removes_the_todo(todos, tenant, admin_db):
    t = await _create(todos, tenant)
    await todos.DeleteTodo(pb.DeleteTodoRequest(id=t.id, etag=t.etag), metadata=tenant.md)
    await fails(todos.GetTodo(pb.GetTodoRequest(id=t.id), metadata=tenant.md), grpc.StatusCode.NOT_FOUND)
    await fails(todos.DeleteTodo(pb.DeleteTodoRequest(id=t.id), metadata=tenant.md), grpc.StatusCode.NOT_FOUND)
    assert (await _written(admin_db, tenant.org_id))["todos"] == 0
    assert await admin_db.fetchval("SELECT count(*) FROM crm.outbox WHERE routing_key = 'crm.audit.recorded' "
                                   "AND aggregate_id = $1", t.id) == 2


# -- list ----------------------------------------------------------------------------------------


async def test_list_orders_by_due_date_then_create_time_and_pages(todos, tenant):
    made = [await _create(todos, tenant, title=title, due_date=due) for title, due in (
        ("no date 1", None), ("late", day(2027, 3, 1)), ("early", day(2026, 1, 5)), ("no date 2", None),
        ("same day 1", day(2026, 6, 1)), ("same day 2", day(2026, 6, 1)))]
    expected = ["early", "same day 1", "same day 2", "late", "no date 1", "no date 2"]
    assert [t.title for t in (await _list(todos, tenant)).todos] == expected
    seen, token, pages = [], "", 0
    while True:
        resp = await _list(todos, tenant, page_size=4, page_token=token)
        seen += [t.title for t in resp.todos]
        pages += 1
        token = resp.next_page_token
        if not token:
            break
    assert seen == expected and pages == 2
    resp = await _list(todos, tenant, page_size=1)
    assert len(resp.todos) == 1 and resp.next_page_token
    await invalid(_list(todos, tenant, page_token=resp.next_page_token, status=PENDING), "page_token")
    await invalid(_list(todos, tenant, page_token="garbage"), "page_token")
    await invalid(_list(todos, tenant, page_size=-1), "page_size")
    assert len(made) == 6


async def test_list_filters(todos, projects, stubs, tenant):
    donor, other_donor = await _donor(stubs, tenant), await _donor(stubs, tenant, first_name="Bo")
    project = await _project(projects, tenant)
    alice = tenant.user_id
    a = await _create(todos, tenant, title="a", donor_id=donor.id, assignee_id=alice, due_date=day(2026, 1, 10))
    b = await _create(todos, tenant, title="b", donor_id=other_donor.id, project_id=project.id,
                      due_date=day(2026, 2, 10))
    c = await _create(todos, tenant, title="c", project_id=project.id, assignee_id=alice)
    await _move(todos, tenant, "start", b.id)

    async def titles(**kw):
        return [t.title for t in (await _list(todos, tenant, **kw)).todos]

    assert await titles(assignee_id=alice) == ["a", "c"]
    assert await titles(donor_id=donor.id) == ["a"]
    assert await titles(project_id=project.id) == ["b", "c"]
    assert await titles(status=IN_PROGRESS) == ["b"]
    assert await titles(status=PENDING) == ["a", "c"]
    assert await titles(due_before=day(2026, 2, 10)) == ["a"]
    assert await titles(due_after=day(2026, 1, 10)) == ["b"]
    assert await titles(due_after=day(2026, 1, 1), due_before=day(2026, 12, 31)) == ["a", "b"]
    assert await titles(project_id=project.id, assignee_id=alice) == ["c"]
    assert await titles(donor_id=str(uuid.uuid4())) == []
    assert c.id and a.id


@pytest.mark.parametrize("kw,field", [
    ({"assignee_id": "x"}, "assignee_id"),
    ({"donor_id": "x"}, "donor_id"),
    ({"project_id": "x"}, "project_id"),
    ({"status": 9}, "status"),
    ({"due_before": date_pb2.Date(year=2026, month=2, day=30)}, "due_before"),
    ({"due_after": date_pb2.Date(year=2026, month=0, day=1)}, "due_after"),
])
async def test_list_rejects_bad_filters(todos, tenant, kw, field):
    await invalid(_list(todos, tenant, **kw), field)


# -- tenancy, merges -----------------------------------------------------------------------------


async def test_another_tenant_sees_and_touches_nothing(todos, projects, stubs, tenant, other_tenant, admin_db):
    donor = await _donor(stubs, tenant)
    project = await _project(projects, tenant)
    t = await _create(todos, tenant, donor_id=donor.id, project_id=project.id)
    before = await _written(admin_db, tenant.org_id)
    theirs_before = await _written(admin_db, other_tenant.org_id)
    md = other_tenant.md
    for call in (todos.GetTodo(pb.GetTodoRequest(id=t.id), metadata=md),
                 _update(todos, other_tenant, todo_pb2.Todo(id=t.id, title="Mallory"), ["title"]),
                 _move(todos, other_tenant, "start", t.id),
                 _move(todos, other_tenant, "complete", t.id),
                 _move(todos, other_tenant, "cancel", t.id),
                 todos.DeleteTodo(pb.DeleteTodoRequest(id=t.id), metadata=md)):
        await fails(call, grpc.StatusCode.NOT_FOUND)
    assert not (await _list(todos, other_tenant)).todos
    assert not (await _list(todos, other_tenant, donor_id=donor.id)).todos
    assert not (await _list(todos, other_tenant, project_id=project.id)).todos
    await invalid(todos.CreateTodo(_new(donor_id=donor.id), metadata=md), "todo.donor_id")
    await invalid(todos.CreateTodo(_new(project_id=project.id), metadata=md), "todo.project_id")
    mine = await _create(todos, other_tenant)
    await invalid(_update(todos, other_tenant, todo_pb2.Todo(id=mine.id, donor_id=donor.id), ["donor_id"]),
                   "todo.donor_id")
    await invalid(_update(todos, other_tenant, todo_pb2.Todo(id=mine.id, project_id=project.id), ["project_id"]),
                   "todo.project_id")
    assert await _written(admin_db, tenant.org_id) == before
    assert (await _written(admin_db, other_tenant.org_id))["todos"] == theirs_before["todos"] + 1
    # the caller's token for its own tenant does not reach the other tenant
    wrong = (("authorization", f"Bearer {tenant.access_token}"), ("x-tenant-id", other_tenant.org_id))
    await fails(todos.GetTodo(pb.GetTodoRequest(id=mine.id), metadata=wrong), grpc.StatusCode.PERMISSION_DENIED)


async def test_merging_donors_moves_their_todos(todos, stubs, tenant):
    survivor = await _donor(stubs, tenant, first_name="Stays")
    merged = await _donor(stubs, tenant, first_name="Goes")
    t = await _create(todos, tenant, donor_id=merged.id)
    await stubs.donors.MergeDonors(dpb.MergeDonorsRequest(survivor_id=survivor.id, merged_id=merged.id),
                                   metadata=tenant.md)
    moved = await _get(todos, tenant, t.id)
    assert moved.donor_id == survivor.id
    assert [x.id for x in (await _list(todos, tenant, donor_id=survivor.id)).todos] == [t.id]
