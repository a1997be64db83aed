"""The organization's AI settings and profile, and each user's personal memory."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from urllib.parse import urlsplit

from chassis.db import Database
from chassis.errors import FailedPrecondition, Violations
from chassis.resource import check_etag, expand_mask
from services.ai.domain import composer
from services.ai.handlers import usage
from services.ai.handlers.credentials import secret_aad
from services.ai.handlers.deps import Deps
from services.ai.handlers.writer import key_aad
from services.ai.store import settings as store
from services.ai.store.settings import Memory, Settings

UPDATABLE = ["provider", "base_url", "model", "api_key", "monthly_token_budget", "ai_instructions", "website_url",
             "service_client_id", "service_client_secret"]
SECRETS = ("api_key", "service_client_secret")
PROVIDERS = ("builtin", "openai", "anthropic")
INSTRUCTIONS_MAX = 10_000
MEMORY_MAX = 10_000


async def get(db: Database, org: uuid.UUID) -> tuple[Settings, int]:
    async with db.unit_of_work(org) as uow:
        s = await store.get(uow.conn, org)
        used = await store.tokens_used(uow.conn, org, usage.this_month())
    return s, used


def _check_url(value: str, field: str, v: Violations) -> str:
    value = value.strip()
    if v.check_text(field, value, 500) and value:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            v.add(field, "must be an http or https URL")
    return value


async def update(db: Database, deps: Deps, org: uuid.UUID, changes: dict, mask: list[str],
                 given_etag: str) -> tuple[Settings, int]:
    v = Violations()
    attrs = expand_mask(mask, UPDATABLE, "update_mask", v)
    if "provider" in attrs and changes["provider"] not in PROVIDERS:
        v.add("settings.provider", "must be BUILTIN, OPENAI_COMPATIBLE or ANTHROPIC")
    if "base_url" in attrs:
        changes["base_url"] = _check_url(changes["base_url"], "settings.base_url", v)
    if "website_url" in attrs:
        changes["website_url"] = _check_url(changes["website_url"], "settings.website_url", v)
    if "model" in attrs:
        changes["model"] = changes["model"].strip()
        if v.check_text("settings.model", changes["model"], 200) and re.search(r"\s", changes["model"]):
            v.add("settings.model", "must not contain spaces")
    if "api_key" in attrs:
        v.check_text("settings.api_key", changes["api_key"], 500)
    if "monthly_token_budget" in attrs and changes["monthly_token_budget"] < 0:
        v.add("settings.monthly_token_budget", "must not be negative")
    if "ai_instructions" in attrs:
        v.check_text("settings.ai_instructions", changes["ai_instructions"], INSTRUCTIONS_MAX)
    if "service_client_id" in attrs:
        changes["service_client_id"] = changes["service_client_id"].strip()
        v.check_text("settings.service_client_id", changes["service_client_id"], 200)
    if "service_client_secret" in attrs:
        v.check_text("settings.service_client_secret", changes["service_client_secret"], 500)
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        s = await store.get(uow.conn, org, for_update=True)
        if s.version:
            check_etag(given_etag, s.version, "AI settings", "settings.etag")
        before = {k: getattr(s, k) for k in UPDATABLE if k not in SECRETS}
        for a in attrs:
            if a == "api_key":
                key = changes["api_key"]
                s.api_key_sealed = deps.keyring.seal(key.encode(), key_aad(org)) if key else None
            elif a == "service_client_secret":
                secret = changes[a]
                s.service_secret_sealed = deps.keyring.seal(secret.encode(), secret_aad(org)) if secret else None
            else:
                setattr(s, a, changes[a])
        if "website_url" in attrs and changes["website_url"] != before["website_url"]:
            s.website_summary, s.website_last_crawled = "", None
        saved = await store.save(uow.conn, s)
        after = {k: getattr(saved, k) for k in UPDATABLE if k not in SECRETS}
        for secret in SECRETS:
            if secret in attrs:  # that it changed, never what it is
                before[secret], after[secret] = "(sealed)", "(changed)"
        uow.audit_change("ai.settings.updated", "ai_settings", str(org), before, after)
        used = await store.tokens_used(uow.conn, org, usage.this_month())
    return saved, used


async def crawl_website(db: Database, deps: Deps, org: uuid.UUID) -> tuple[Settings, int]:
    """Fetch the website's front page with the safe fetcher and keep what it says (extracted
    sentences, no model: a page's text is data and is kept as such)."""
    async with db.unit_of_work(org) as uow:
        s = await store.get(uow.conn, org)
    if not s.website_url:
        raise FailedPrecondition("set settings.website_url first", reason="WEBSITE_URL_MISSING")
    try:
        page = await deps.fetcher.fetch(s.website_url)
    except Exception as exc:
        raise FailedPrecondition(f"the website could not be fetched: {exc}", reason="WEBSITE_FETCH_FAILED") from exc
    summary = website_summary(page.title, page.text)
    async with db.unit_of_work(org) as uow:
        s = await store.get(uow.conn, org, for_update=True)
        s.website_summary, s.website_last_crawled = summary, datetime.now(UTC)
        saved = await store.save(uow.conn, s)
        uow.audit("ai.website.crawled", "ai_settings", str(org), after={"website_url": s.website_url})
        used = await store.tokens_used(uow.conn, org, usage.this_month())
    return saved, used


def website_summary(title: str, text: str, sentences: int = 5) -> str:
    out: list[str] = [title.strip()] if title.strip() else []
    rest = " ".join(text.split())
    while rest and len(out) < sentences + 1:
        s = composer.first_sentence(rest, 400)
        if not s:
            break
        out.append(s)
        rest = rest[len(s):].lstrip()
    return "\n".join(out)[:4000]


async def get_memory(db: Database, org: uuid.UUID, user: uuid.UUID) -> Memory:
    async with db.unit_of_work(org) as uow:
        return await store.get_memory(uow.conn, org, user)


async def put_memory(db: Database, org: uuid.UUID, user: uuid.UUID, memory: str) -> Memory:
    v = Violations()
    v.check_text("memory", memory, MEMORY_MAX)
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        return await store.put_memory(uow.conn, org, user, memory.strip())
