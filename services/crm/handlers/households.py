"""Household use cases: create, read, list, rename or change the primary member, move a donor
in or out (the history kept), and what merges and deletes of donors do to households.

Locks: the donors moving (FOR NO KEY UPDATE, id order), then the households touched (FOR
UPDATE, id order): a household's members and primary member change one writer at a time."""

from __future__ import annotations

import uuid
from datetime import datetime

from givance.events.v1 import crm_events_pb2

from chassis.db import Database, UnitOfWork
from chassis.errors import InvalidArgument, NotFound, Violations
from chassis.resource import Keyset, check_etag, check_request_id, expand_mask, parse_id, parse_optional_id
from services.crm.domain import households as rules
from services.crm.domain.households import MemberName
from services.crm.store import donations as gift_store
from services.crm.store import households as store
from services.crm.store.households import Household, Membership

__all__ = ["Household", "Membership", "view"]
UPDATE_PATHS = {"name": "name", "primary_donor_id": "primary_donor_id"}


def view(h: Household) -> tuple[str, bool, str, str]:
    """(name in use, derived?, formal salutation, informal salutation), primary member first."""
    ordered = sorted(h.members, key=lambda m: m.donor_id != h.primary_donor_id)
    names = [MemberName(m.first_name, m.last_name) for m in ordered]
    formal, informal = rules.salutations(names)
    return h.name or rules.derived_name(names), h.name is None, formal, informal


async def _read(uow: UnitOfWork, org: uuid.UUID, rows: list[Household]) -> list[Household]:
    ids = [h.id for h in rows]
    members = await store.members(uow.conn, org, ids)
    giving = await store.giving(uow.conn, org, ids)
    for h in rows:
        h.members, h.giving = members.get(h.id, []), giving.get(h.id, [])
    return rows


async def _one(uow: UnitOfWork, org: uuid.UUID, hid: uuid.UUID) -> Household:
    row = await store.get(uow.conn, org, hid)
    return (await _read(uow, org, [row]))[0]


def _publish(uow: UnitOfWork, kind: str, h: Household) -> None:
    name = view(h)[0]
    uow.publish(f"crm.household.{kind}", crm_events_pb2.HouseholdEvent(
        household_id=str(h.id), name=name, primary_donor_id=str(h.primary_donor_id or ""),
        member_donor_ids=[str(m.donor_id) for m in h.members]), aggregate_type="household", aggregate_id=str(h.id))


def _member_event(uow: UnitOfWork, kind: str, hid: uuid.UUID, donor_id: uuid.UUID, reason: str = "") -> None:
    uow.publish(f"crm.household.{kind}", crm_events_pb2.HouseholdMemberEvent(
        household_id=str(hid), donor_id=str(donor_id), reason=reason), aggregate_type="household",
        aggregate_id=str(hid))


async def _leave(uow: UnitOfWork, org: uuid.UUID, donor_id: uuid.UUID, hid: uuid.UUID, reason: str,
                 household: Household) -> None:
    """The donor leaves `hid` (locked by the caller); a new primary member when it was them."""
    await store.leave(uow.conn, org, donor_id, reason)
    remaining = [m.donor_id for m in (await store.members(uow.conn, org, [hid])).get(hid, [])]
    primary = rules.next_primary(household.primary_donor_id, donor_id, remaining)
    if primary != household.primary_donor_id:
        await store.update(uow.conn, org, hid, household.name, primary)
    _member_event(uow, "member_left", hid, donor_id, reason)


async def create_household(db: Database, org: uuid.UUID, name: str, primary: str, donor_ids: list[str],
                           request_id: str) -> Household:
    v = Violations()
    custom = rules.check_name(name, "household.name", v)
    check_request_id(request_id, v)
    if not donor_ids:
        v.add("donor_ids", "name at least one donor")
    elif len(donor_ids) > rules.MAX_MEMBERS:
        v.add("donor_ids", f"must name at most {rules.MAX_MEMBERS} donors")
    at: dict[uuid.UUID, int] = {}
    for n, raw in enumerate(donor_ids[:rules.MAX_MEMBERS + 1]):
        if (i := parse_id(raw, f"donor_ids[{n}]", v)) is not None:
            at.setdefault(i, n)
    ids = list(at)
    primary_id = parse_optional_id(primary, "household.primary_donor_id", v)
    if primary_id is not None and ids and primary_id not in ids:
        v.add("household.primary_donor_id", "must be one of donor_ids")
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        hid = uuid.uuid4()
        if not await store.insert(uow.conn, org, hid, custom, request_id or None):
            return await _one(uow, org, await store.id_by_request_id(uow.conn, org, request_id))
        live = await gift_store.lock_donors(uow.conn, org, ids)
        for d in ids:
            if not live.get(d):
                v.add(f"donor_ids[{at[d]}]", "no such donor")
        v.raise_if_any()
        before = await store.current_of(uow.conn, org, ids)
        olds = await store.lock(uow.conn, org, list(set(before.values())))
        for d in ids:
            if d in before:
                await _leave(uow, org, d, before[d], "moved", olds[before[d]])
            await store.join(uow.conn, org, hid, d)
            _member_event(uow, "member_joined", hid, d)
        await store.update(uow.conn, org, hid, custom, primary_id or ids[0])
        row = await _one(uow, org, hid)
        _publish(uow, "created", row)
        uow.audit("crm.household.create", "household", str(hid),
                  after={"name": custom, "members": [str(d) for d in ids], "primary": str(row.primary_donor_id)})
        return row


async def get_household(db: Database, org: uuid.UUID, household_id: str) -> Household:
    hid = parse_id(household_id, "id")
    async with db.unit_of_work(org) as uow:
        if await store.get(uow.conn, org, hid) is None:
            raise NotFound(f"household {household_id} not found")
        return await _one(uow, org, hid)


async def list_households(db: Database, org: uuid.UUID, page_size: int, page_token: str,
                          ) -> tuple[list[Household], str]:
    page = Keyset.of(page_size, page_token, ("households",), (datetime.fromisoformat, uuid.UUID))
    async with db.unit_of_work(org) as uow:
        rows = await store.page(uow.conn, org, page.after, page.limit)
        rows, token = page.cut(rows, lambda r: (r.created_at, r.id))
        return await _read(uow, org, rows), token


async def update_household(db: Database, org: uuid.UUID, household_id: str, etag: str, name: str, primary: str,
                           mask: list[str]) -> Household:
    v = Violations()
    hid = parse_id(household_id, "household.id", v)
    attrs = expand_mask(mask, UPDATE_PATHS, "update_mask", v)
    custom = rules.check_name(name, "household.name", v) if "name" in attrs else None
    primary_id = parse_optional_id(primary, "household.primary_donor_id", v) if "primary_donor_id" in attrs else None
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        row = await store.get(uow.conn, org, hid, lock=True)
        if row is None:
            raise NotFound(f"household {household_id} not found")
        check_etag(etag, row.version, "household", "household.etag")
        row = (await _read(uow, org, [row]))[0]
        new_name = custom if "name" in attrs else row.name
        new_primary = primary_id if "primary_donor_id" in attrs else row.primary_donor_id
        if new_primary not in {m.donor_id for m in row.members}:
            raise InvalidArgument.field("household.primary_donor_id", "must be a member of the household")
        if (new_name, new_primary) == (row.name, row.primary_donor_id):
            return row
        await store.update(uow.conn, org, hid, new_name, new_primary)
        updated = await _one(uow, org, hid)
        _publish(uow, "updated", updated)
        uow.audit("crm.household.update", "household", str(hid),
                  before={"name": row.name, "primary": str(row.primary_donor_id)},
                  after={"name": new_name, "primary": str(new_primary)})
        return updated


async def move_donor(db: Database, org: uuid.UUID, donor_id: str, household_id: str,
                     ) -> tuple[Household | None, Household | None]:
    v = Violations()
    did = parse_id(donor_id, "donor_id", v)
    hid = parse_optional_id(household_id, "household_id", v)
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        live = await gift_store.lock_donors(uow.conn, org, [did])
        if not live.get(did):
            raise NotFound(f"donor {donor_id} not found")
        old = (await store.current_of(uow.conn, org, [did])).get(did)
        locked = await store.lock(uow.conn, org, [h for h in (old, hid) if h])
        if hid is not None and hid not in locked:
            raise InvalidArgument.field("household_id", "no such household")
        if old == hid:  # already there (or in none): nothing written
            return (await _one(uow, org, hid) if hid else None), None
        if old is not None:
            await _leave(uow, org, did, old, "moved" if hid else "removed", locked[old])
        if hid is not None:
            await store.join(uow.conn, org, hid, did)
            _member_event(uow, "member_joined", hid, did)
            if locked[hid].primary_donor_id is None:
                await store.update(uow.conn, org, hid, locked[hid].name, did)
        uow.audit("crm.household.move", "donor", str(did), before={"household_id": str(old or "")},
                  after={"household_id": str(hid or "")})
        return (await _one(uow, org, hid) if hid else None), (await _one(uow, org, old) if old else None)


async def list_memberships(db: Database, org: uuid.UUID, household_id: str, donor_id: str, page_size: int,
                           page_token: str) -> tuple[list[Membership], str]:
    v = Violations()
    hid = parse_optional_id(household_id, "household_id", v)
    did = parse_optional_id(donor_id, "donor_id", v)
    if hid is None and did is None and not v.items:
        v.add("household_id", "name a household or a donor")
    v.raise_if_any()
    page = Keyset.of(page_size, page_token, ("memberships", household_id, donor_id),
                     (datetime.fromisoformat, uuid.UUID))
    async with db.unit_of_work(org) as uow:
        rows = await store.memberships(uow.conn, org, hid, did, page.after, page.limit)
    return page.cut(rows, lambda r: (r.joined_at, r.id))


async def donor_gone(uow: UnitOfWork, org: uuid.UUID, donor_id: uuid.UUID, reason: str) -> None:
    """A donor merged into another or deleted leaves their household (the caller holds the
    donor's lock)."""
    hid = (await store.current_of(uow.conn, org, [donor_id])).get(donor_id)
    if hid is not None:
        locked = await store.lock(uow.conn, org, [hid])
        await _leave(uow, org, donor_id, hid, reason, locked[hid])
