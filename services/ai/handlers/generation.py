"""GenerateDonorEmail: one donor's email, grounded in their own history.

The donor's context comes from crm (record, recent gifts, journey stage, open todos) read with
the caller's token; then the donor's latest completed research, the organization's profile and
instructions and the caller's personal memory. The result carries what it was grounded on.
This is the contract comms' generation sessions call once per donor (docs/ai.md).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

from chassis.db import Database
from chassis.errors import Violations
from chassis.resource import parse_id
from services.ai.handlers import usage, writer
from services.ai.handlers.deps import Deps
from services.ai.store import research as research_store
from services.ai.store import settings as store

INSTRUCTIONS_MAX = 5000
SIGNER_MAX = 200
TEMPLATE_MAX = 20_000


@dataclass
class Generated:
    subject: str
    body: str
    model: str
    donation_ids: list[str] = field(default_factory=list)
    research_id: str = ""
    donor_fields: list[str] = field(default_factory=list)
    todo_ids: list[str] = field(default_factory=list)
    used_profile: bool = False
    used_instructions: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0


async def generate(db: Database, deps: Deps, org: uuid.UUID, user: uuid.UUID | None, metadata, donor_id: str,
                   instructions: str, signer: str, template: str) -> Generated:
    v = Violations()
    donor = parse_id(donor_id, "donor_id", v)
    v.check_text("instructions", instructions, INSTRUCTIONS_MAX)
    v.check_text("signer_name", signer, SIGNER_MAX)
    v.check_text("template", template, TEMPLATE_MAX)
    v.raise_if_any()
    async def own() -> tuple:
        async with db.unit_of_work(org) as uow:
            await usage.check_budget(uow, org)
            s = await store.get(uow.conn, org)
            memory = (await store.get_memory(uow.conn, org, user)).memory if user else ""
            return s, memory, await research_store.latest_completed(uow.conn, org, donor)

    # ai's own rows and crm's facts at once
    (s, memory, research), facts = await asyncio.gather(own(), deps.crm.donor_facts(metadata, str(donor)))
    research_text = ""
    if research is not None:
        research_text = research.summary + "\n" + "\n".join(c["text"] for c in research.claims)
    subject, body, model, completion = await writer.email(
        deps, s, facts, instructions=instructions.strip(), memory=memory, research=research_text,
        signer=signer.strip(), template=template)
    if completion is not None:
        async with db.unit_of_work(org) as uow:
            await usage.record(uow, org, completion, "generation")
    uses_model = model != "builtin-composer"
    return Generated(
        subject=subject, body=body, model=model, donation_ids=[g.id for g in facts.gifts],
        research_id=str(research.id) if research is not None and uses_model else "",
        donor_fields=facts.used_fields(), todo_ids=[t["id"] for t in facts.open_todos],
        used_profile=uses_model and bool(s.website_summary or s.ai_instructions),
        used_instructions=uses_model and bool(instructions.strip()),
        prompt_tokens=completion.prompt_tokens if completion else 0,
        completion_tokens=completion.completion_tokens if completion else 0)
