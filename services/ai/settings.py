"""ai's settings (prefix AI_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from chassis.settings import ServiceSettings

# Development only (like identity's DEV_ENCRYPTION_KEYS): seals provider API keys under `make run`.
DEV_ENCRYPTION_KEYS = "aidev1:ZGV2LWFpLXByb3ZpZGVyLWtleXMtb25seS1kZXYtMTI="


class AiSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="AI_", extra="ignore")

    port: int = 50054
    # What ai's service principal must be granted (AI_PRINCIPAL_CLIENT_ID and _SECRET): its jobs
    # read donors, gifts and open todos from crm and past communications from comms, and take
    # and complete the generation sessions' jobs in comms; classification runs write a donor's
    # ai_classification and suggest todos in crm (each job asks identity for no more than it needs).
    principal_permissions: ClassVar[tuple[str, ...]] = (
        "crm.donors.read", "crm.donations.read", "crm.todos.read", "comms.communications.read",
        "comms.generation.jobs", "crm.donors.write", "crm.todos.write")
    # crm, whose donors, gifts and todos ai reads (with the caller's own token).
    crm_address: str = Field("127.0.0.1:50052", validation_alias=AliasChoices("AI_CRM_ADDRESS", "CRM_ADDRESS"))
    # comms: a donor's recent communications, and the generation sessions' jobs.
    comms_address: str = Field("127.0.0.1:50053",
                               validation_alias=AliasChoices("AI_COMMS_ADDRESS", "COMMS_ADDRESS"))
    # AES-256-GCM keys sealing provider API keys at rest: "kid:base64key,..." (chassis.crypto).
    encryption_keys: str = DEV_ENCRYPTION_KEYS
    # Model calls: seconds per attempt, and retries on 429 and 5xx (the SDKs' own back-off).
    model_timeout_seconds: float = 60.0
    model_max_retries: int = 2
    # Web search (Brave Search's wire format); empty: research from the organization's own data.
    search_url: str = ""
    search_api_key: str = ""
    # The page fetcher's limits.
    fetch_timeout_seconds: float = 10.0
    fetch_max_bytes: int = 2_000_000
    fetch_max_redirects: int = 5
    # Tests only: loopback ports (comma-separated) of local test servers the fetcher may reach.
    # Empty in every deployment: loopback, private and link-local addresses are then all refused.
    fetch_test_loopback_ports: str = ""

    # "*": every loopback port (the in-process test suite).

    def loopback_ports(self) -> frozenset[int]:
        if self.fetch_test_loopback_ports.strip() == "*":
            return frozenset(range(1, 65536))
        return frozenset(int(p) for p in self.fetch_test_loopback_ports.split(",") if p.strip())
    # Pages fetched per research job.
    research_max_pages: int = 3
