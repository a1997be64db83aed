"""Who writes: the organization's model (its settings, its sealed key) or the built-in composer.
Every model answer passes the guardrails (domain/guard.py); one that does not is replaced by the
composer's, and the result says which wrote it."""

from __future__ import annotations

import logging
import uuid

from services.ai.domain import composer, guard
from services.ai.domain.facts import DonorFacts, ResearchResult, Source
from services.ai.domain.models import BUILTIN_MODEL, Completion, Message, ModelError
from services.ai.handlers.deps import Deps
from services.ai.store.settings import Settings

log = logging.getLogger(__name__)


def key_aad(org: uuid.UUID) -> bytes:
    return f"ai.settings.api_key:{org}".encode()


def model_for(deps: Deps, s: Settings):
    """The organization's model, or None for the built-in composer."""
    if s.provider == "builtin":
        return None
    api_key = deps.keyring.open(s.api_key_sealed, key_aad(s.organization_id)).decode() if s.api_key_sealed else ""
    return deps.models(s.provider, base_url=s.base_url, model=s.model, api_key=api_key,
                       timeout=deps.model_timeout, max_retries=deps.model_retries)


async def email(deps: Deps, s: Settings, facts: DonorFacts, *, instructions: str, memory: str, research: str,
                signer: str, template: str, organization: str = "") -> tuple[str, str, str, Completion | None]:
    """(subject, body, model name, the model's completion for usage, or None)."""
    model = model_for(deps, s)
    if model is not None:
        system, user = guard.email_prompt(facts, instructions=instructions, org_instructions=s.ai_instructions,
                                          website_summary=s.website_summary, memory=memory, research=research,
                                          signer=signer, template=template)
        completion = await _complete(model, system, user)
        try:
            subject, body = guard.parse_email(completion)
            return subject, body, completion.model, completion
        except guard.OutputRejected as exc:
            log.warning("model answer refused for donor %s (%s): the built-in composer writes it",
                        facts.donor_id, exc)
            subject, body = composer.compose_email(facts, signer=signer, template=template,
                                                   organization=organization)
            return subject, body, BUILTIN_MODEL, completion
    subject, body = composer.compose_email(facts, signer=signer, template=template, organization=organization)
    return subject, body, BUILTIN_MODEL, None


async def research(deps: Deps, s: Settings, facts: DonorFacts,
                   sources: list[Source]) -> tuple[ResearchResult, Completion | None]:
    model = model_for(deps, s)
    if model is None:
        return composer.summarise_research(facts, sources), None
    system, user = guard.research_prompt(facts, sources)
    completion = await _complete(model, system, user)
    try:
        summary, claims = guard.parse_research(completion, sources)
        return ResearchResult(summary, claims, completion.model), completion
    except guard.OutputRejected as exc:
        log.warning("model research refused for donor %s (%s): the built-in composer writes it", facts.donor_id, exc)
        return composer.summarise_research(facts, sources), completion


async def _complete(model, system: str, user: str) -> Completion:
    try:
        # No tools are offered to a writer: nothing in the data can make it act.
        return await model.complete(system, [Message("user", user)], tools=(), max_tokens=1500)
    except ModelError as exc:
        from chassis.errors import Unavailable

        raise Unavailable(f"the organization's model could not answer: {exc}") from exc
