"""TEMPORARY (to be replaced by chassis.tenant_tokens.TenantTokens.metadata once the suite issues
service tokens for a tenant): the generation worker's credentials for one organization, from the
service account the organization gave ai in its settings (UpdateAiSettings: service_client_id,
service_client_secret, sealed at rest). The token identity issues for it is kept until a minute
before it expires.

Wired in services/ai/__main__.py as `deps.credentials`; anything with the same shape
(`async (organization_id) -> gRPC metadata`) can replace it there.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

from chassis.db import Database
from chassis.errors import FailedPrecondition
from services.ai.handlers.deps import Deps
from services.ai.store import settings as store

MARGIN_SECONDS = 60.0


def secret_aad(org: uuid.UUID) -> bytes:
    return f"ai.settings.service_secret:{org}".encode()


class ServiceAccountCredentials:
    def __init__(self, db: Database, deps: Deps, identity):
        self.db = db
        self.deps = deps
        self.identity = identity  # providers.identity.IdentityTokens
        self._tokens: dict[uuid.UUID, tuple[str, float, str]] = {}  # org -> (token, expiry, client id)

    async def __call__(self, org: uuid.UUID) -> Sequence[tuple[str, str]]:
        cached = self._tokens.get(org)
        if cached is None or cached[1] - MARGIN_SECONDS < time.time():
            async with self.db.unit_of_work(org) as uow:
                s = await store.get(uow.conn, org)
            if not s.service_client_id or not s.service_secret_sealed:
                raise FailedPrecondition(f"organization {org} gave ai no service account (UpdateAiSettings)",
                                         reason="AI_SERVICE_ACCOUNT_MISSING")
            secret = self.deps.keyring.open(s.service_secret_sealed, secret_aad(org)).decode()
            token, expiry = await self.identity.issue(s.service_client_id, secret)
            cached = self._tokens[org] = (token, expiry, s.service_client_id)
        return (("authorization", f"Bearer {cached[0]}"), ("x-tenant-id", str(org)))
