"""AI email generation sessions: create (one job per donor on the work queue), read, watch, cancel.

CreateEmailGenerationSession stores the session, one generation_jobs row per donor and, in the
same transaction, one `comms.generation_job.requested` event per donor through the outbox: the
work queue ai's generation worker takes (chassis consumer: inbox, retries, dead letters). Each
job comes back through GenerationJobService (handlers/generation_jobs.py).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

from givance.events.v1 import comms_events_pb2

from chassis.errors import InvalidArgument, Violations
from chassis.resource import Keyset, check_request_id, found, parse_id, parse_optional_id
from services.comms.domain import generation as rules
from services.comms.handlers.deps import Deps
from services.comms.store import generation as store
from services.comms.store import members as members_store
from services.comms.store.generation import Session

WATCH_POLL_SECONDS = 1.0  # another replica's progress is seen at least this often


@dataclass
class NewSession:
    name: str
    description: str
    instructions: str
    donor_ids: list[str]
    donor_list_id: str
    template: str
    signer_user_id: str
    signer_name: str
    request_id: str = ""


def _check(s: NewSession, v: Violations) -> tuple[list[uuid.UUID], uuid.UUID | None, uuid.UUID | None]:
    v.check_text("session.name", s.name.strip(), rules.NAME_MAX, required=True)
    v.check_text("session.description", s.description, rules.DESCRIPTION_MAX)
    v.check_text("session.instructions", s.instructions, rules.INSTRUCTIONS_MAX)
    v.check_text("session.template", s.template, rules.TEMPLATE_MAX)
    v.check_text("session.signer.name", s.signer_name.strip(), rules.SIGNER_MAX, required=True)
    signer = parse_optional_id(s.signer_user_id, "session.signer.user_id", v)
    check_request_id(s.request_id, v)
    list_id = parse_optional_id(s.donor_list_id, "session.donor_list_id", v)
    donors: list[uuid.UUID] = []
    if s.donor_ids and s.donor_list_id:
        v.add("session.donor_ids", "give either donor_ids or donor_list_id, not both")
    elif not s.donor_ids and not s.donor_list_id:
        v.add("session.donor_ids", "give donor_ids or a donor_list_id")
    elif len(s.donor_ids) > rules.DONORS_MAX:
        v.add("session.donor_ids", f"at most {rules.DONORS_MAX} donors per session")
    else:
        seen: set[uuid.UUID] = set()
        for i, raw in enumerate(s.donor_ids):
            d = parse_id(raw, f"session.donor_ids[{i}]", v)
            if d is not None and d not in seen:
                seen.add(d)
                donors.append(d)
    return donors, list_id, signer


async def create(deps: Deps, org: uuid.UUID, caller, principal: uuid.UUID | None, s: NewSession) -> Session:
    """`caller` reads a donor list from crm with the caller's own rights."""
    v = Violations()
    donors, list_id, signer = _check(s, v)
    v.raise_if_any()
    if s.request_id:
        async with deps.db.unit_of_work(org) as uow:
            earlier = await store.session_by_request_id(uow.conn, org, s.request_id)
            if earlier is not None:
                return await store.get_session(uow.conn, org, earlier)
    selection: dict = {"donor_ids": len(donors)}
    if list_id is not None:
        members = await deps.crm.list_members(caller, str(list_id), rules.DONORS_MAX)
        if len(members) > rules.DONORS_MAX:
            raise InvalidArgument.field("session.donor_list_id", f"the list has more than {rules.DONORS_MAX} donors")
        if not members:
            raise InvalidArgument.field("session.donor_list_id", "the list has no donors")
        donors = list(dict.fromkeys(uuid.UUID(m) for m in members))
        selection = {"donor_list_id": str(list_id), "donor_ids": len(donors)}
    session_id = uuid.uuid4()
    async with deps.db.unit_of_work(org) as uow:
        # Another signer than the caller must be one of the organization's active members (comms'
        # replica of identity's memberships: chassis.members); the caller's token vouches for them.
        if signer is not None and signer != principal and not await members_store.is_active(uow.conn, org, signer):
            raise InvalidArgument.field("session.signer.user_id", "is not an active member of the organization")
        made = await store.insert_session(uow.conn, {
            "id": session_id, "organization_id": org, "name": s.name.strip(), "description": s.description,
            "status": "generating", "instructions": s.instructions.strip(), "donor_selection": selection,
            "selected_donor_ids": donors, "template": s.template, "signer_user_id": signer or principal,
            "signer_name": s.signer_name.strip(), "total_emails": len(donors), "job_started_at": datetime.now(UTC),
            "create_request_id": s.request_id or None, "created_by": principal})
        if not made:  # a concurrent twin won the request id
            earlier = await store.session_by_request_id(uow.conn, org, s.request_id)
            return await store.get_session(uow.conn, org, earlier)
        await store.insert_jobs(uow.conn, org, session_id, donors)
        for d in donors:
            uow.publish(rules.JOB_REQUESTED, comms_events_pb2.GenerationJobRequestedEvent(
                session_id=str(session_id), donor_id=str(d)), aggregate_type="generation_session",
                aggregate_id=str(session_id))
        uow.audit("comms.generation_session.created", "email_generation_session", str(session_id),
                  after={"name": s.name.strip(), "donors": len(donors), **selection})
        return await store.get_session(uow.conn, org, session_id)


async def list_sessions(deps: Deps, org: uuid.UUID, status: str | None, page_size: int,
                        page_token: str) -> tuple[list[Session], str]:
    page = Keyset.of(page_size, page_token, ("sessions", status), (datetime.fromisoformat, uuid.UUID), maximum=500)
    async with deps.db.unit_of_work(org) as uow:
        rows = await store.page_sessions(uow.conn, org, status, page.after, page.limit)
    return page.cut(rows, lambda r: (r.created_at, r.id))


async def get(deps: Deps, org: uuid.UUID, session_id: str) -> Session:
    sid = parse_id(session_id, "id")
    async with deps.db.unit_of_work(org) as uow:
        row = await store.get_session(uow.conn, org, sid)
    return found(row, "email generation session", session_id)


async def watch(deps: Deps, org: uuid.UUID, session_id: str) -> AsyncIterator[Session]:
    """The session now, then each time it changes, until it is completed or cancelled."""
    sid = parse_id(session_id, "id")
    seen = -1
    while True:
        wake = deps.progress.setdefault(sid, asyncio.Event())  # before reading: no change slips between
        async with deps.db.unit_of_work(org) as uow:
            row = found(await store.get_session(uow.conn, org, sid), "email generation session", session_id)
        if row.version != seen:
            seen = row.version
            yield row
        if row.status in rules.FINISHED:
            return
        try:
            await asyncio.wait_for(wake.wait(), WATCH_POLL_SECONDS)
        except TimeoutError:
            pass


def changed(deps: Deps, session_id: uuid.UUID) -> None:
    """Wakes this process' watchers of the session (after the change committed)."""
    wake = deps.progress.pop(session_id, None)
    if wake is not None:
        wake.set()


async def cancel(deps: Deps, org: uuid.UUID, session_id: str) -> Session:
    sid = parse_id(session_id, "id")
    async with deps.db.unit_of_work(org) as uow:
        row = found(await store.get_session(uow.conn, org, sid, for_update=True), "email generation session",
                    session_id)
        if row.status not in rules.FINISHED:
            stopped = await store.cancel(uow.conn, org, sid)
            uow.audit("comms.generation_session.cancelled", "email_generation_session", str(sid),
                      after={"stopped_jobs": stopped})
        row = await store.get_session(uow.conn, org, sid)
    changed(deps, sid)
    return row
