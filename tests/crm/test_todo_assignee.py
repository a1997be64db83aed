"""Who a todo may be assigned to: an active member of the organization, known to crm from
identity's events (crm.members, kept by the crm.members consumer), or the caller themself.

Members are invited, accepted, suspended, reactivated and removed through identity's API; the
events travel through the real outbox and broker. Instead of sleeping, a test waits until crm's
consumer has handled every event identity wrote for that membership (crm.inbox), then asserts.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from givance.crm.v1 import todo_pb2
from givance.crm.v1 import todo_service_pb2 as pb
from givance.events.v1 import identity_events_pb2
from givance.identity.v1 import member_pb2
from givance.identity.v1 import membership_service_pb2 as mpb
from google.protobuf import field_mask_pb2

from chassis import events
from chassis.db import Database, create_engine
from chassis.settings import ServiceSettings
from services.crm.consumers import members as consumer
from tests.conftest import PASSWORD, Tenant
from tests.helpers import comms_opens, eventually, field_violations, invalid

NOT_A_MEMBER = "is not an active member of the organization"
MEMBERSHIP_KEYS = ("identity.member.joined", "identity.membership.changed")


@pytest.fixture
def channels(stubs):
    return stubs.members, stubs.todos


@pytest.fixture
def members(channels):
    return channels[0]


@pytest.fixture
def todos(channels):
    return channels[1]


# -- helpers ------------------------------------------------------------------------------------


def _create(todos, tenant: Tenant, assignee: str, title: str = "Call back"):
    return todos.CreateTodo(pb.CreateTodoRequest(todo=todo_pb2.Todo(title=title, assignee_id=assignee)),
                            metadata=tenant.md)


def _assign(todos, tenant: Tenant, todo: todo_pb2.Todo, assignee: str):
    return todos.UpdateTodo(pb.UpdateTodoRequest(todo=todo_pb2.Todo(id=todo.id, assignee_id=assignee),
                                                 update_mask=field_mask_pb2.FieldMask(paths=["assignee_id"])),
                            metadata=tenant.md)


async def _refused(call) -> None:
    err = await invalid(call, "todo.assignee_id")
    assert field_violations(err)["todo.assignee_id"] == NOT_A_MEMBER


async def _written(admin_db, org_id: str):
    """Everything a todo write of the organization leaves behind: its todos and its outbox rows."""
    return await admin_db.fetchrow(
        "SELECT (SELECT coalesce(string_agg(t::text, '|' ORDER BY id), '') FROM crm.todos t"
        "  WHERE organization_id = $1::uuid) AS todos,"
        " (SELECT count(*) FROM crm.outbox WHERE tenant_id = $1::uuid"
        " AND routing_key <> 'crm.audit.batch_recorded') AS outbox", org_id)


async def _caught_up(admin_db, org_id: str, user_id: str) -> None:
    """Wait until crm's replica consumer has handled every membership event identity wrote for
    this member (they are in crm.inbox only once handled and committed)."""
    ids = [r["event_id"] for r in await admin_db.fetch(
        "SELECT event_id FROM identity.outbox WHERE aggregate_id = $1 AND routing_key = ANY($2::text[])",
        f"{org_id}/{user_id}", list(MEMBERSHIP_KEYS))]
    assert ids, "identity wrote no membership event"

    async def handled():
        n = await admin_db.fetchval("SELECT count(*) FROM crm.inbox WHERE consumer = $1 AND event_id = ANY($2)",
                                    consumer.QUEUE, ids)
        return n == len(ids)

    await eventually(handled, what=f"crm to handle the membership events of {user_id}")


async def _accept_token(admin_db, invitation_id: str) -> str:
    body = await admin_db.fetchval("SELECT body FROM identity.outbox WHERE routing_key = 'identity.invitation.created' "
                                   "AND aggregate_id = $1", invitation_id)
    event = events.unpack(events.parse(bytes(body)), identity_events_pb2.InvitationCreatedEvent)
    link = comms_opens("identity.invitation.created", invitation_id, event.sealed_accept_link)
    return parse_qs(urlparse(link).query)["token"][0]


async def _join(members, admin_db, owner: Tenant, role: str = "staff") -> Tenant:
    """A new account invited into owner's organization and accepted, with its tokens there."""
    inv = (await members.CreateInvitation(mpb.CreateInvitationRequest(
        email=f"assignee-{uuid.uuid4().hex[:10]}@example.org", role=role), metadata=owner.md)).invitation
    t = (await members.AcceptInvitation(mpb.AcceptInvitationRequest(
        token=await _accept_token(admin_db, inv.id), password=PASSWORD, first_name="Ana", last_name="Signee"))).tokens
    return Tenant(org_id=t.organization_id, user_id=t.user_id, email=inv.email, access_token=t.access_token,
                  refresh_token=t.refresh_token)


# -- through the API ----------------------------------------------------------------------------


async def test_a_non_member_is_refused_and_nothing_is_written(todos, tenant, admin_db):
    mine = (await _create(todos, tenant, "")).todo
    before = await _written(admin_db, tenant.org_id)
    stranger = str(uuid.uuid4())
    await _refused(_create(todos, tenant, stranger))
    await _refused(_assign(todos, tenant, mine, stranger))
    # an empty mask writes every field, the assignee too
    await _refused(todos.UpdateTodo(pb.UpdateTodoRequest(todo=todo_pb2.Todo(id=mine.id, title="x",
                                                                             assignee_id=stranger)),
                                    metadata=tenant.md))
    assert await _written(admin_db, tenant.org_id) == before


async def test_an_accepted_invitee_can_be_assigned_once_crm_knows(members, todos, tenant, admin_db):
    member = await _join(members, admin_db, tenant)
    await _caught_up(admin_db, tenant.org_id, member.user_id)
    t = (await _create(todos, tenant, member.user_id)).todo
    assert t.assignee_id == member.user_id and t.creator_id == tenant.user_id
    other = (await _create(todos, tenant, "")).todo
    assert (await _assign(todos, tenant, other, member.user_id)).todo.assignee_id == member.user_id
    # the member assigns to the owner, whose sign-up made them a member too
    await _caught_up(admin_db, tenant.org_id, tenant.user_id)
    assert (await _create(todos, member, tenant.user_id)).todo.assignee_id == tenant.user_id


async def test_another_organizations_member_is_refused(members, todos, tenant, other_tenant, admin_db):
    theirs = await _join(members, admin_db, other_tenant)
    await _caught_up(admin_db, other_tenant.org_id, theirs.user_id)
    await _caught_up(admin_db, other_tenant.org_id, other_tenant.user_id)
    assert (await _create(todos, other_tenant, theirs.user_id)).todo.assignee_id == theirs.user_id
    before = await _written(admin_db, tenant.org_id)
    for user_id in (theirs.user_id, other_tenant.user_id):
        await _refused(_create(todos, tenant, user_id))
    assert await _written(admin_db, tenant.org_id) == before


async def test_suspension_and_removal_refuse_reactivation_allows(members, todos, tenant, admin_db):
    member = await _join(members, admin_db, tenant)
    await _caught_up(admin_db, tenant.org_id, member.user_id)
    kept = (await _create(todos, tenant, member.user_id, title="assigned before")).todo

    await members.SuspendMember(mpb.SuspendMemberRequest(user_id=member.user_id), metadata=tenant.md)
    await _caught_up(admin_db, tenant.org_id, member.user_id)
    before = await _written(admin_db, tenant.org_id)
    await _refused(_create(todos, tenant, member.user_id))
    assert await _written(admin_db, tenant.org_id) == before

    # a role change of a suspended member says nothing about being active: still refused
    current = next(m for m in (await members.ListMembers(mpb.ListMembersRequest(page_size=1000),
                                                          metadata=tenant.md)).members
                   if m.user_id == member.user_id)
    await members.UpdateMember(mpb.UpdateMemberRequest(
        member=member_pb2.Member(user_id=member.user_id, role="viewer", etag=current.etag)), metadata=tenant.md)
    await _caught_up(admin_db, tenant.org_id, member.user_id)
    await _refused(_create(todos, tenant, member.user_id))

    await members.ReactivateMember(mpb.ReactivateMemberRequest(user_id=member.user_id), metadata=tenant.md)
    await _caught_up(admin_db, tenant.org_id, member.user_id)
    assert (await _create(todos, tenant, member.user_id)).todo.assignee_id == member.user_id

    await members.RemoveMember(mpb.RemoveMemberRequest(user_id=member.user_id), metadata=tenant.md)
    await _caught_up(admin_db, tenant.org_id, member.user_id)
    unassigned = (await _create(todos, tenant, "")).todo
    before = await _written(admin_db, tenant.org_id)
    await _refused(_create(todos, tenant, member.user_id))
    await _refused(_assign(todos, tenant, unassigned, member.user_id))
    assert await _written(admin_db, tenant.org_id) == before

    # a todo assigned before keeps its assignee, lists by them, and its other fields still change
    listed = (await todos.ListTodos(pb.ListTodosRequest(assignee_id=member.user_id), metadata=tenant.md)).todos
    assert kept.id in [t.id for t in listed]
    renamed = (await todos.UpdateTodo(pb.UpdateTodoRequest(
        todo=todo_pb2.Todo(id=kept.id, title="renamed", assignee_id=member.user_id)), metadata=tenant.md)).todo
    assert (renamed.title, renamed.assignee_id) == ("renamed", member.user_id)


async def test_the_caller_may_always_assign_to_themself(stubs, todos, admin_db):
    fresh = await stubs.sign_up("Fresh Org")
    # at once: the owner's membership may not have reached crm yet
    t = (await _create(todos, fresh, fresh.user_id)).todo
    assert t.assignee_id == fresh.user_id
    # even when crm has no record of it at all
    await _caught_up(admin_db, fresh.org_id, fresh.user_id)
    await admin_db.execute("DELETE FROM crm.members WHERE organization_id = $1::uuid", fresh.org_id)
    assert (await _create(todos, fresh, fresh.user_id)).todo.assignee_id == fresh.user_id
    other = (await _create(todos, fresh, "")).todo
    assert (await _assign(todos, fresh, other, fresh.user_id)).todo.assignee_id == fresh.user_id


# -- the replica's consumer, against the real database ------------------------------------------


@pytest.fixture
async def crm_db(env):
    db = Database(create_engine(ServiceSettings().app_database_url("crm"), pool_size=2), "crm")
    yield db
    await db.dispose()


def _event(org: uuid.UUID, key: str, payload, at: datetime, aggregate_type: str = "membership"):
    return events.envelope(key, payload, org, aggregate_type, f"{org}/{getattr(payload, 'user_id', '')}",
                           occurred_at=at)


async def test_the_replica_never_lets_an_older_event_overwrite_a_newer_state(crm_db, admin_db):
    org, user = uuid.uuid4(), uuid.uuid4()
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def joined(at):
        return _event(org, consumer.MEMBER_JOINED, identity_events_pb2.MemberJoinedEvent(
            organization_id=str(org), user_id=str(user), role="staff"), at)

    def changed(change, at, aggregate_type="membership"):
        return _event(org, consumer.MEMBERSHIP_CHANGED, identity_events_pb2.MembershipChangedEvent(
            organization_id=str(org), user_id=str(user), change=change), at, aggregate_type)

    async def handle(event):
        async with crm_db.unit_of_work(org) as uow:
            await consumer.on_membership_event(uow, event)

    async def state():
        row = await admin_db.fetchrow("SELECT active, last_event_time FROM crm.members "
                                      "WHERE organization_id = $1 AND user_id = $2", org, user)
        return (row["active"], row["last_event_time"]) if row else None

    def at(minutes):
        return t0 + timedelta(minutes=minutes)

    # suspended at 10 arrives first; the join at 0 arrives late and changes nothing
    await handle(changed("suspended", at(10)))
    assert await state() == (False, at(10))
    await handle(joined(at(0)))
    assert await state() == (False, at(10))
    # reactivated at 20: active; a removal at 15 arriving after it changes nothing
    await handle(changed("reactivated", at(20)))
    await handle(changed("removed", at(15)))
    assert await state() == (True, at(20))
    # an event at the very same time does not overwrite either
    await handle(changed("suspended", at(20)))
    assert await state() == (True, at(20))
    # a role change says nothing about being active; a service account's removal is no membership
    await handle(changed("role_changed", at(30)))
    await handle(changed("removed", at(31), aggregate_type="service_account"))
    assert await state() == (True, at(20))
    # removed at 40, then joined again (a new invitation) at 50
    await handle(changed("removed", at(40)))
    assert await state() == (False, at(40))
    await handle(joined(at(50)))
    assert await state() == (True, at(50))
    # the owner's organization.created makes them active too (their first event, here)
    owner = uuid.uuid4()
    await handle(_event(org, consumer.ORGANIZATION_CREATED, identity_events_pb2.OrganizationCreatedEvent(
        organization_id=str(org), owner_user_id=str(owner), name="Org", slug="org"), at(1), "organization"))
    assert await admin_db.fetchval("SELECT active FROM crm.members WHERE organization_id = $1 AND user_id = $2",
                                   org, owner) is True


async def test_the_replica_refuses_an_event_naming_another_organization(crm_db, admin_db):
    org, elsewhere, user = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    event = _event(org, consumer.MEMBER_JOINED, identity_events_pb2.MemberJoinedEvent(
        organization_id=str(elsewhere), user_id=str(user), role="staff"), datetime.now(UTC))
    with pytest.raises(ValueError):
        async with crm_db.unit_of_work(org) as uow:
            await consumer.on_membership_event(uow, event)
    assert not await admin_db.fetchval("SELECT count(*) FROM crm.members WHERE user_id = $1", user)
