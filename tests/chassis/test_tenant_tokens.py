"""chassis.tenant_tokens against the real identity: one exchange per tenant while the token is
fresh, a new one before it expires, one request for many concurrent callers, a bounded cache;
and the development bootstrap of `make run` (tools/devprincipals.py)."""

from __future__ import annotations

import asyncio
import uuid

import jwt
import pytest

from chassis.errors import Unavailable
from chassis.settings import ServiceSettings
from chassis.spec import listed_services
from chassis.tenant_tokens import TenantTokens, dev_principals, dev_secret
from services.ai.settings import AiSettings
from services.comms.settings import CommsSettings
from services.crm.settings import CrmSettings
from tools import devprincipals


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        import time

        return time.time() + self.offset


@pytest.fixture
def address(identity_host) -> str:
    return f"127.0.0.1:{identity_host.bound_port}"


def jti(md) -> str:
    return jwt.decode(dict(md)["authorization"].removeprefix("Bearer "), options={"verify_signature": False})["jti"]


async def test_cached_while_fresh_and_fetched_again_before_expiry(address, tenant, other_tenant):
    clock = Clock()
    tokens = TenantTokens(address, "ai", dev_secret("ai"), clock=clock, refresh_margin=60)
    try:
        first = await tokens.metadata(tenant.org_id)
        assert await tokens.metadata(uuid.UUID(tenant.org_id)) == first and tokens.exchanges == 1
        # each tenant its own token
        other = await tokens.metadata(other_tenant.org_id)
        assert dict(other)["x-tenant-id"] == other_tenant.org_id and jti(other) != jti(first)
        assert tokens.exchanges == 2
        # four minutes on (of five): still fresh; a minute before expiry: a new one
        clock.offset = 200
        assert await tokens.metadata(tenant.org_id) == first and tokens.exchanges == 2
        clock.offset = 241
        again = await tokens.metadata(tenant.org_id)
        assert jti(again) != jti(first) and tokens.exchanges == 3
        # forget drops it: the next call fetches
        tokens.forget(tenant.org_id)
        assert jti(await tokens.metadata(tenant.org_id)) != jti(again) and tokens.exchanges == 4
    finally:
        await tokens.close()


async def test_concurrent_callers_of_one_tenant_share_one_exchange(address, tenant):
    tokens = TenantTokens(address, "ai", dev_secret("ai"))
    try:
        got = await asyncio.gather(*(tokens.metadata(tenant.org_id) for _ in range(20)))
        assert len(set(got)) == 1 and tokens.exchanges == 1
    finally:
        await tokens.close()


async def test_the_cache_is_bounded(address, stubs):
    orgs = [(await stubs.sign_up()).org_id for _ in range(3)]
    tokens = TenantTokens(address, "ai", dev_secret("ai"), max_tenants=2)
    try:
        for org in orgs:
            await tokens.metadata(org)
        assert len(tokens) == 2
        await tokens.metadata(orgs[2])  # the newest is kept...
        assert tokens.exchanges == 3
        await tokens.metadata(orgs[0])  # ...the least recently used was dropped
        assert tokens.exchanges == 4
    finally:
        await tokens.close()


async def test_identity_unreachable_is_unavailable_and_nothing_is_cached(tenant):
    tokens = TenantTokens("127.0.0.1:1", "ai", dev_secret("ai"), timeout=2)
    try:
        with pytest.raises(Unavailable):
            await tokens.metadata(tenant.org_id)
        assert len(tokens) == 0
    finally:
        await tokens.close()


def test_from_settings():
    assert TenantTokens.from_settings(CrmSettings(principal_client_id="", principal_client_secret="")) is None
    tokens = TenantTokens.from_settings(AiSettings(principal_client_id="ai", principal_client_secret="s",
                                                   identity_address="10.0.0.1:50051"))
    assert tokens is not None and tokens.client_id == "ai" and tokens.identity_address == "10.0.0.1:50051"


def test_development_credentials_only_when_asked():
    env: dict[str, str] = {}
    assert dev_principals(["crm", "ai", "comms"], env) == {} and env == {}
    env = {"GIVANCE_DEV_PRINCIPALS": "1", "AI_PRINCIPAL_CLIENT_SECRET": "the operator's own"}
    wanted = dev_principals(["identity", "crm", "ai", "comms"], env)
    # crm, comms and ai declare what they need; ai keeps the operator's credential; the others need none
    assert wanted == {"crm": CrmSettings.principal_permissions, "comms": CommsSettings.principal_permissions}
    assert env["CRM_PRINCIPAL_CLIENT_ID"] == "crm" and env["CRM_PRINCIPAL_CLIENT_SECRET"] == dev_secret("crm")
    assert env["AI_PRINCIPAL_CLIENT_SECRET"] == "the operator's own" and "AI_PRINCIPAL_CLIENT_ID" not in env
    assert "principal_permissions" not in CrmSettings.model_fields  # declared by the code, not a setting


async def test_the_make_run_bootstrap_sets_them_up_and_back(address, tenant, admin_db):
    """What `make run` runs (python -m tools.devprincipals): the principals exist with the
    development secret and the declared grant, set back when changed; run twice, nothing new."""
    admin = ServiceSettings().admin_database_url()
    await admin_db.execute("UPDATE identity.service_principals SET permissions = '{crm.donors.read}', "
                           "revoked_at = now() WHERE name = 'ai'")
    env = {"GIVANCE_DEV_PRINCIPALS": "1"}
    assert await devprincipals.bootstrap(admin, listed_services(), env) == ["crm", "comms", "ai"]
    count = await admin_db.fetchval("SELECT count(*) FROM identity.platform_activity")
    again = {"GIVANCE_DEV_PRINCIPALS": "1"}
    assert await devprincipals.bootstrap(admin, listed_services(), again) == ["crm", "comms", "ai"]
    assert await admin_db.fetchval("SELECT count(*) FROM identity.platform_activity") == count  # unchanged
    row = await admin_db.fetchrow("SELECT permissions, revoked_at FROM identity.service_principals WHERE name = 'ai'")
    assert tuple(row["permissions"]) == AiSettings.principal_permissions and row["revoked_at"] is None
    for service in ("crm", "comms", "ai"):
        tokens = TenantTokens(address, env[f"{service.upper()}_PRINCIPAL_CLIENT_ID"],
                              env[f"{service.upper()}_PRINCIPAL_CLIENT_SECRET"])
        try:
            await tokens.metadata(tenant.org_id)
        finally:
            await tokens.close()
    assert await devprincipals.bootstrap(admin, listed_services(), {}) == []  # not a development run
