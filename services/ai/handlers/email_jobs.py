"""The generation worker: one donor's job of a comms email generation session.

A job (comms.generation_job.requested, taken from ai's `ai.email-generation-jobs` queue by the
chassis consumer: inbox, retries, dead letters) acts for its tenant with the credentials the
worker is given (`deps.credentials(organization_id) -> gRPC metadata`, wired in __main__.py):

1. comms' StartGenerationJob says whether to write it (not for a cancelled session or a job
   already done) and with what instructions, template and signer;
2. the donor's context: from crm the donor, their gifts, journey stage and open todos; from comms
   their recent communications; ai's own latest research on them, the organization's profile and
   instructions, the signer's personal memory;
3. the organization's writer (its model, or the built-in composer) writes subject and body;
4. comms' CompleteGenerationJob stores the draft with what it was grounded on and the model's
   name (one draft per session and donor: a job run twice after a crash stores it once).

A donor the credentials cannot see, or a spent token budget, fails the donor's job (the session
counts it); crm or comms unreachable is retried by the consumer.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from chassis.db import UnitOfWork
from chassis.errors import InvalidArgument, ServiceError, Unavailable
from services.ai.domain.models import BUILTIN_MODEL
from services.ai.handlers import usage, writer
from services.ai.handlers.deps import Deps
from services.ai.store import research as research_store
from services.ai.store import settings as store

log = logging.getLogger(__name__)


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


async def run(uow: UnitOfWork, deps: Deps, session_id: str, donor_id: str) -> None:
    org = uow.tenant_id
    if deps.credentials is None or deps.comms is None:
        raise RuntimeError("ai's generation worker has no credentials or comms client (services/ai/__main__.py)")
    metadata = await deps.credentials(org)
    job = await deps.comms.start_job(metadata, session_id, donor_id)
    if job is None:
        return  # cancelled, or written already
    started = time.perf_counter()
    donor = _uuid(donor_id)
    try:
        if donor is None:
            raise InvalidArgument.field("donor_id", "is not a valid id")
        await usage.check_budget(uow, org)
        s = await store.get(uow.conn, org)
        signer = _uuid(job.signer_user_id) if job.signer_user_id else None
        memory = (await store.get_memory(uow.conn, org, signer)).memory if signer else ""
        research = await research_store.latest_completed(uow.conn, org, donor)
        facts, contacts = await asyncio.gather(deps.crm.donor_facts(metadata, donor_id),
                                               deps.comms.recent_communications(metadata, donor_id))
        facts.recent_contacts = contacts
        research_text = ""
        if research is not None:
            research_text = research.summary + "\n" + "\n".join(c["text"] for c in research.claims)
        subject, body, model, completion = await writer.email(
            deps, s, facts, instructions=job.instructions.strip(), memory=memory, research=research_text,
            signer=job.signer_name.strip(), template=job.template)
    except ServiceError as exc:
        if isinstance(exc, Unavailable):
            raise  # crm, comms or the model will answer later: the consumer retries
        log.info("generation job %s/%s failed: %s", session_id, donor_id, exc)
        await deps.comms.complete_job(metadata, session_id, donor_id, None, failure=str(exc))
        return
    if completion is not None:
        await usage.record(uow, org, completion, "generation")
    uses_model = model != BUILTIN_MODEL
    grounding = {
        "donation_ids": [g.id for g in facts.gifts], "donor_fields": facts.used_fields(),
        "todo_ids": [t["id"] for t in facts.open_todos],
        # what a model was given; the composer uses the donor's facts and gifts only
        "research_id": str(research.id) if research is not None and uses_model else "",
        "communication_ids": [c["id"] for c in contacts] if uses_model else [],
        "used_organization_profile": uses_model and bool(s.website_summary or s.ai_instructions),
        "used_instructions": uses_model and bool(job.instructions.strip()),
    }
    await deps.comms.complete_job(metadata, session_id, donor_id, {
        "subject": subject, "body": body, "model": model, "grounding": grounding,
        "token_usage": completion.tokens if completion is not None else 0,
        "generation_time_ms": int((time.perf_counter() - started) * 1000)})
