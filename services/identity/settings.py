"""identity's settings (prefix IDENTITY_)."""

from __future__ import annotations

import logging

from pydantic_settings import SettingsConfigDict

from chassis.crypto import DEV_EVENT_SECRET_KEYS
from chassis.settings import ServiceSettings

log = logging.getLogger(__name__)

# Development only: a published key seals nothing secret. Deployments set
# IDENTITY_ENCRYPTION_KEYS (kid:base64 32-byte key, comma-separated, first one seals).
DEV_ENCRYPTION_KEYS = "dev1:ZGV2LW9ubHktZGV2LW9ubHktZGV2LW9ubHktZGV2LW8="


class IdentitySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="IDENTITY_", extra="ignore")

    port: int = 50051
    encryption_keys: str = DEV_ENCRYPTION_KEYS
    # The keys links and codes are sealed with in events, for comms (which holds the same keys):
    # `kid:base64key,...`, the first one seals (chassis.crypto).
    event_secret_keys: str = DEV_EVENT_SECRET_KEYS
    # identity refuses to start with a published development key unless this is set
    # (IDENTITY_ALLOW_DEV_KEYS=1: `make run` and the tests set it).
    allow_dev_keys: bool = False
    access_token_ttl_seconds: int = 15 * 60
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    # A platform service principal's token for one organization (IssueTenantToken).
    tenant_token_ttl_seconds: int = 5 * 60
    # argon2id cost (OWASP: m=19 MiB, t=2, p=1 as the floor)
    argon2_time_cost: int = 2
    argon2_memory_kib: int = 19 * 1024
    argon2_parallelism: int = 1
    # How many argon2 hashes run at once (0: one per CPU of the pod's CPU limit, within half its
    # memory limit; services/identity/limits.py), and how long a sign-in waits for one before
    # it is shed with RESOURCE_EXHAUSTED.
    argon2_max_concurrency: int = 0
    argon2_queue_timeout_seconds: float = 2.0
    # Where users open the links identity sends (email verification, password reset).
    public_url: str = "http://127.0.0.1:8080"

    def dev_keys_in_use(self) -> list[str]:
        """The settings that still hold a published development key."""
        return [name for name, value, dev in (("IDENTITY_ENCRYPTION_KEYS", self.encryption_keys, DEV_ENCRYPTION_KEYS),
                                              ("IDENTITY_EVENT_SECRET_KEYS", self.event_secret_keys,
                                               DEV_EVENT_SECRET_KEYS))
                if any(part.strip() in dev.split(",") for part in value.split(","))]

    def refuse_dev_keys(self) -> None:
        """Raises unless every key is the operator's own, or development keys are allowed explicitly
        (then it only warns): a published key seals nothing secret."""
        found = self.dev_keys_in_use()
        if not found:
            return
        if not self.allow_dev_keys:
            raise RuntimeError(f"identity: {', '.join(found)} hold the published development key; set your own "
                               "keys, or IDENTITY_ALLOW_DEV_KEYS=1 for a development run")
        log.warning("identity: using the development keys of %s (IDENTITY_ALLOW_DEV_KEYS=1)", ", ".join(found))
