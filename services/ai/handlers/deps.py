"""What ai's handlers are given (built once in __main__.py, never imported from providers here)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from chassis.crypto import Keyring


@dataclass
class Deps:
    keyring: Keyring
    # build(provider, base_url=, model=, api_key=, timeout=, max_retries=) -> a model, or None for
    # the built-in composer (services/ai/providers/models.py)
    models: Callable[..., Any]
    fetcher: Any  # SafeFetcher: fetch(url) -> Page
    search: Any | None  # Search: search(query, count) -> [SearchResult]; None when not configured
    crm: Any  # CrmReader: donor_facts(metadata, donor_id) -> DonorFacts
    # async (organization id) -> gRPC metadata acting for it with ai's own tenant token
    # (chassis.tenant_tokens.TenantTokens.metadata), for jobs with no caller; None: ai has no
    # service principal, and jobs work from what their requester read.
    tenant_metadata: Callable[[Any], Awaitable[Sequence[tuple[str, str]]]] | None = None
    model_timeout: float = 60.0
    model_retries: int = 2
    max_pages: int = 3
    comms: Any = None  # CommsClient: recent_communications, start_job, complete_job
    # The generation worker's credentials: organization id -> gRPC metadata acting for that tenant
    # (wired in __main__.py; tests inject their own).
    credentials: Callable[[Any], Awaitable[Sequence[tuple[str, str]]]] | None = None
    # The WhatsApp assistant's reads: organization id -> gRPC metadata with ai's tenant token
    # narrowed to read permissions (READ_ONLY below); None: ai has no service principal.
    assistant_metadata: Callable[[Any], Awaitable[Sequence[tuple[str, str]]]] | None = None
    # Classification runs' reads and writes in crm: the same principal narrowed to CLASSIFY.
    classifier_metadata: Callable[[Any], Awaitable[Sequence[tuple[str, str]]]] | None = None


# What the WhatsApp assistant's token may do: read donors, gifts and todos, nothing else.
READ_ONLY = ("crm.donors.read", "crm.donations.read", "crm.todos.read")
# What a classification run's token may do: those reads, a donor's ai_classification, a todo.
CLASSIFY = (*READ_ONLY, "crm.donors.write", "crm.todos.write")
