"""ai.settings, ai.personal_memory and ai.token_usage."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from chassis.db import Connection
from chassis.sql import by_name, first

COLUMNS = ("organization_id, provider, base_url, model, api_key_sealed, monthly_token_budget, ai_instructions, "
           "website_url, website_summary, website_last_crawled, service_client_id, service_secret_sealed, version, "
           "updated_at")


@dataclass
class Settings:
    organization_id: uuid.UUID
    provider: str = "builtin"
    base_url: str = ""
    model: str = ""
    api_key_sealed: str | None = None
    monthly_token_budget: int = 0
    ai_instructions: str = ""
    website_url: str = ""
    website_summary: str = ""
    website_last_crawled: datetime | None = None
    service_client_id: str = ""
    service_secret_sealed: str | None = None
    version: int = 0  # 0: never written (defaults)
    updated_at: datetime | None = None


async def get(conn: Connection, org: uuid.UUID, *, for_update: bool = False) -> Settings:
    row = await first(conn, f"SELECT {COLUMNS} FROM ai.settings WHERE organization_id = :org"
                            f"{' FOR UPDATE' if for_update else ''}", {"org": org}, by_name(Settings))
    return row or Settings(organization_id=org)


async def save(conn: Connection, s: Settings) -> Settings:
    params: dict[str, Any] = {k: getattr(s, k) for k in (
        "provider", "base_url", "model", "api_key_sealed", "monthly_token_budget", "ai_instructions",
        "website_url", "website_summary", "website_last_crawled", "service_client_id", "service_secret_sealed")}
    params["org"] = s.organization_id
    return await first(conn, f"""
        INSERT INTO ai.settings (organization_id, provider, base_url, model, api_key_sealed, monthly_token_budget,
          ai_instructions, website_url, website_summary, website_last_crawled, service_client_id,
          service_secret_sealed)
        VALUES (:org, :provider, :base_url, :model, :api_key_sealed, :monthly_token_budget, :ai_instructions,
          :website_url, :website_summary, :website_last_crawled, :service_client_id, :service_secret_sealed)
        ON CONFLICT (organization_id) DO UPDATE SET provider = EXCLUDED.provider, base_url = EXCLUDED.base_url,
          model = EXCLUDED.model, api_key_sealed = EXCLUDED.api_key_sealed,
          monthly_token_budget = EXCLUDED.monthly_token_budget, ai_instructions = EXCLUDED.ai_instructions,
          website_url = EXCLUDED.website_url, website_summary = EXCLUDED.website_summary,
          website_last_crawled = EXCLUDED.website_last_crawled, service_client_id = EXCLUDED.service_client_id,
          service_secret_sealed = EXCLUDED.service_secret_sealed, version = ai.settings.version + 1,
          updated_at = now()
        RETURNING {COLUMNS}""", params, by_name(Settings))


async def tokens_used(conn: Connection, org: uuid.UUID, month: date) -> int:
    row = await first(conn, "SELECT prompt_tokens + completion_tokens AS used FROM ai.token_usage "
                            "WHERE organization_id = :org AND month = :month", {"org": org, "month": month})
    return int(row["used"]) if row else 0


async def add_usage(conn: Connection, org: uuid.UUID, month: date, prompt: int, completion: int) -> None:
    await conn.execute("""
        INSERT INTO ai.token_usage (organization_id, month, prompt_tokens, completion_tokens)
        VALUES (:org, :month, :p, :c)
        ON CONFLICT (organization_id, month) DO UPDATE SET
          prompt_tokens = ai.token_usage.prompt_tokens + EXCLUDED.prompt_tokens,
          completion_tokens = ai.token_usage.completion_tokens + EXCLUDED.completion_tokens, updated_at = now()
        """, {"org": org, "month": month, "p": prompt, "c": completion})


@dataclass
class Memory:
    user_id: uuid.UUID
    memory: str
    updated_at: datetime | None


async def get_memory(conn: Connection, org: uuid.UUID, user: uuid.UUID) -> Memory:
    row = await first(conn, "SELECT user_id, memory, updated_at FROM ai.personal_memory "
                            "WHERE organization_id = :org AND user_id = :user", {"org": org, "user": user},
                      by_name(Memory))
    return row or Memory(user, "", None)


async def put_memory(conn: Connection, org: uuid.UUID, user: uuid.UUID, memory: str) -> Memory:
    return await first(conn, """
        INSERT INTO ai.personal_memory (organization_id, user_id, memory) VALUES (:org, :user, :memory)
        ON CONFLICT (organization_id, user_id) DO UPDATE SET memory = EXCLUDED.memory, updated_at = now()
        RETURNING user_id, memory, updated_at""", {"org": org, "user": user, "memory": memory}, by_name(Memory))
