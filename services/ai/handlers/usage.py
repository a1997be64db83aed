"""Token budgets and usage: checked before a model call, counted after it, and published
(ai.usage.recorded) for billing, in the same transaction as the count."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from givance.events.v1 import ai_events_pb2

from chassis.db import UnitOfWork
from chassis.errors import ResourceExhausted
from services.ai.domain.models import Completion
from services.ai.store import settings as store

BUDGET_REASON = "AI_TOKEN_BUDGET_EXHAUSTED"


def this_month() -> date:
    today = datetime.now(UTC).date()
    return today.replace(day=1)


async def check_budget(uow: UnitOfWork, org: uuid.UUID) -> None:
    s = await store.get(uow.conn, org)
    if s.monthly_token_budget <= 0:
        return
    used = await store.tokens_used(uow.conn, org, this_month())
    if used >= s.monthly_token_budget:
        raise ResourceExhausted(
            f"the organization has used its {s.monthly_token_budget} AI tokens for this month",
            reason=BUDGET_REASON, metadata={"budget": str(s.monthly_token_budget), "used": str(used)})


async def record(uow: UnitOfWork, org: uuid.UUID, c: Completion, purpose: str) -> None:
    """Count a model call's tokens (the built-in composer's calls cost none and are not counted)."""
    if c.tokens <= 0:
        return
    await store.add_usage(uow.conn, org, this_month(), c.prompt_tokens, c.completion_tokens)
    uow.publish("ai.usage.recorded", ai_events_pb2.AiUsageRecordedEvent(
        provider=c.provider, model=c.model, prompt_tokens=c.prompt_tokens, completion_tokens=c.completion_tokens,
        purpose=purpose), aggregate_type="organization", aggregate_id=str(org), tenant_id=org)
