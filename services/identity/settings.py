"""identity's settings (prefix IDENTITY_)."""

from __future__ import annotations

import logging

from pydantic_settings import SettingsConfigDict

from chassis.settings import ServiceSettings

log = logging.getLogger(__name__)

# Development only: a published key seals nothing secret. Deployments set
# IDENTITY_ENCRYPTION_KEYS (kid:base64 32-byte key, comma-separated, first one seals).
DEV_ENCRYPTION_KEYS = "dev1:ZGV2LW9ubHktZGV2LW9ubHktZGV2LW9ubHktZGV2LW8="


class IdentitySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="IDENTITY_", extra="ignore")

    port: int = 50051
    encryption_keys: str = DEV_ENCRYPTION_KEYS
    access_token_ttl_seconds: int = 15 * 60
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    # argon2id cost (OWASP: m=19 MiB, t=2, p=1 as the floor)
    argon2_time_cost: int = 2
    argon2_memory_kib: int = 19 * 1024
    argon2_parallelism: int = 1
    # Where users open the links identity sends (email verification, password reset).
    public_url: str = "http://127.0.0.1:8080"

    def warn_if_dev_keys(self) -> None:
        if self.encryption_keys == DEV_ENCRYPTION_KEYS:
            log.warning("identity: using the development encryption key; set IDENTITY_ENCRYPTION_KEYS")
