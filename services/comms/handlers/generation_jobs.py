"""The work queue's side of generation sessions (GenerationJobService, for ai's worker only).

StartGenerationJob says whether a donor's job should be written (its session still generating,
the job still pending) and with what. CompleteGenerationJob stores the draft (or the failure):
one draft per session and donor (a unique key), so a job written twice after a crash stores
nothing the second time; the session's counters move with the job in the same transaction, and
the session is completed with its last job.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from chassis.errors import Violations
from chassis.resource import found, parse_id
from services.comms.domain import generation as rules
from services.comms.handlers.deps import Deps
from services.comms.handlers.generation_sessions import changed
from services.comms.store import generation as store
from services.comms.store.generation import Session


@dataclass
class Draft:
    subject: str
    body: str
    model: str
    grounding: dict = field(default_factory=dict)
    token_usage: int = 0
    generation_time_ms: int = 0


@dataclass
class Completed:
    email_id: uuid.UUID | None
    duplicate: bool


def _ids(session_id: str, donor_id: str, v: Violations) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    return parse_id(session_id, "session_id", v), parse_id(donor_id, "donor_id", v)


async def start(deps: Deps, org: uuid.UUID, session_id: str, donor_id: str) -> tuple[bool, Session]:
    v = Violations()
    sid, did = _ids(session_id, donor_id, v)
    v.raise_if_any()
    async with deps.db.unit_of_work(org) as uow:
        session = found(await store.get_session(uow.conn, org, sid), "email generation session", session_id)
        status = await store.job_status(uow.conn, org, sid, did)
    if status is None:
        found(None, "generation job", f"{session_id}/{donor_id}")
    return status == "pending" and session.status == "generating", session


def _check_draft(d: Draft, v: Violations) -> None:
    v.check_text("draft.subject", d.subject, rules.SUBJECT_MAX, required=True)
    v.check_text("draft.body", d.body, rules.BODY_MAX, required=True)
    v.check_text("draft.model", d.model, rules.MODEL_MAX, required=True)
    for key, values in d.grounding.items():
        if isinstance(values, list) and len(values) > rules.GROUNDING_IDS_MAX:
            v.add(f"draft.grounding.{key}", f"at most {rules.GROUNDING_IDS_MAX}")
    if d.token_usage < 0:
        v.add("draft.token_usage", "must not be negative")
    if d.generation_time_ms < 0:
        v.add("draft.generation_time_ms", "must not be negative")


async def complete(deps: Deps, org: uuid.UUID, session_id: str, donor_id: str, draft: Draft | None,
                   failure: str) -> Completed:
    v = Violations()
    sid, did = _ids(session_id, donor_id, v)
    if draft is not None:
        _check_draft(draft, v)
    else:
        v.check_text("failure", failure, rules.REASON_MAX, required=True)
    v.raise_if_any()
    async with deps.db.unit_of_work(org) as uow:
        found(await store.get_session(uow.conn, org, sid), "email generation session", session_id)
        status = await store.job_status(uow.conn, org, sid, did)
        if status is None:
            found(None, "generation job", f"{session_id}/{donor_id}")
        if status != "pending":  # done before (a redelivered job), failed, or its session cancelled
            return Completed(await store.email_id_for(uow.conn, org, sid, did), True)
        if draft is None:
            await store.finish_job(uow.conn, org, sid, did, "failed", failure)
            result = Completed(None, False)
        else:
            email_id = uuid.uuid4()
            made = await store.insert_email(uow.conn, {
                "id": email_id, "organization_id": org, "session_id": sid, "donor_id": did,
                "subject": draft.subject.strip(), "body_plain": draft.body, "body_html": rules.html_of(draft.body),
                "ai_model": draft.model, "token_usage": draft.token_usage,
                "generation_time_ms": draft.generation_time_ms, "donor_context_used": draft.grounding})
            await store.finish_job(uow.conn, org, sid, did, "done")
            result = Completed(email_id if made else await store.email_id_for(uow.conn, org, sid, did), not made)
    changed(deps, sid)
    return result
