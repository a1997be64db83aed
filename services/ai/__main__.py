"""python -m services.ai: the service's declaration; the chassis builds it (chassis.spec)."""

from __future__ import annotations

import logging

from chassis.crypto import Keyring
from chassis.spec import Built, ServiceSpec
from chassis.tenant_tokens import TenantTokens
from services.ai.api.agents import AgentServicer
from services.ai.api.classification import ClassificationServicer
from services.ai.api.generation import GenerationServicer
from services.ai.api.research import ResearchServicer
from services.ai.api.settings import AiSettingsServicer
from services.ai.api.whatsapp import WhatsAppAssistantServicer
from services.ai.consumers import ASSISTANT, BATCHES, EMAIL_JOBS, JOBS, SUBSCRIPTIONS
from services.ai.handlers.credentials import ServiceAccountCredentials
from services.ai.handlers.deps import CLASSIFY, READ_ONLY, Deps
from services.ai.providers import models
from services.ai.providers.comms import CommsClient
from services.ai.providers.crm import CrmReader
from services.ai.providers.fetcher import SafeFetcher
from services.ai.providers.identity import IdentityTokens
from services.ai.providers.search import BraveSearch
from services.ai.settings import DEV_ENCRYPTION_KEYS, AiSettings

log = logging.getLogger(__name__)


async def dependencies(b: Built[AiSettings]) -> Deps:
    s = b.settings
    if s.encryption_keys == DEV_ENCRYPTION_KEYS:
        log.warning("ai: sealing model API keys with the published development key (set AI_ENCRYPTION_KEYS)")
    deps = Deps(
        keyring=Keyring(s.encryption_keys), models=models.build,
        fetcher=SafeFetcher(timeout=s.fetch_timeout_seconds, max_bytes=s.fetch_max_bytes,
                            max_redirects=s.fetch_max_redirects, loopback_ports=s.loopback_ports()),
        search=BraveSearch(s.search_url, s.search_api_key) if s.search_url else None,
        crm=CrmReader(s.crm_address), model_timeout=s.model_timeout_seconds, model_retries=s.model_max_retries,
        max_pages=s.research_max_pages, comms=CommsClient(s.comms_address))
    tokens = TenantTokens.from_settings(s)
    if tokens is None:
        log.warning("ai: no service principal (AI_PRINCIPAL_CLIENT_ID, AI_PRINCIPAL_CLIENT_SECRET): "
                    "research jobs work from what their requester read; generation jobs use the "
                    "service account each organization gave ai in its settings")
        deps.credentials = ServiceAccountCredentials(b.db, deps, IdentityTokens(s.identity_address))
    else:
        deps.tenant_metadata = tokens.metadata
        deps.credentials = tokens.metadata  # the generation worker acts for each job's tenant
        # the WhatsApp assistant: the same principal, its token narrowed to reads
        deps.assistant_metadata = TenantTokens.from_settings(s, permissions=READ_ONLY).metadata
        # classification runs: reads, and the two writes ClassifyDonor makes
        deps.classifier_metadata = TenantTokens.from_settings(s, permissions=CLASSIFY).metadata
    JOBS.deps = deps
    EMAIL_JOBS.deps = deps
    ASSISTANT.deps = deps
    BATCHES.deps = deps
    return deps


def servicers(b: Built[AiSettings]) -> list[object]:
    return [AiSettingsServicer(b.db, b.own), ResearchServicer(b.db, b.own), GenerationServicer(b.db, b.own),
            ClassificationServicer(b.db, b.own), AgentServicer(b.db, b.own),
            WhatsAppAssistantServicer(b.db, b.own)]


SPEC = ServiceSpec(name="ai", settings=AiSettings, servicers=servicers, subscriptions=SUBSCRIPTIONS,
                   dependencies=dependencies)
build = SPEC.build  # build(settings=None, *, verifier=None) -> ServiceHost, as the tests call it

if __name__ == "__main__":
    SPEC.serve()
