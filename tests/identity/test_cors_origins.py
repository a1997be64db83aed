"""An organization's CORS origins: stored by identity, normalized and validated, readable by the
gateway through the internal CheckAllowedOrigin, and isolated by row-level security (the one
cross-tenant read shows the rows of the origin asked about, nothing else)."""

from __future__ import annotations

import uuid

import asyncpg
import grpc
from givance.identity.v1 import organization_pb2
from givance.identity.v1 import organization_service_pb2 as opb
from google.protobuf import field_mask_pb2

from chassis.errors import Violations
from chassis.settings import ServiceSettings, plain_dsn
from services.identity.domain.organizations import normalize_origin
from tests.helpers import fails, field_violations


async def _set(stubs, tenant, origins):
    return (await stubs.organizations.UpdateOrganization(opb.UpdateOrganizationRequest(
        organization=organization_pb2.Organization(allowed_origins=origins),
        update_mask=field_mask_pb2.FieldMask(paths=["allowed_origins"])), metadata=tenant.md)).organization


def test_origins_are_normalized_as_browsers_send_them():
    cases = {
        "HTTPS://App.Example.ORG:443/": "https://app.example.org",
        "https://app.example.org:8443": "https://app.example.org:8443",
        "http://localhost:3000": "http://localhost:3000",
        "http://127.0.0.1:8000": "http://127.0.0.1:8000",
        "http://[::1]:3000": "http://[::1]:3000",
        "https://bücher.example": "https://xn--bcher-kva.example",
    }
    for given, expected in cases.items():
        v = Violations()
        assert normalize_origin(given, "o", v) == expected and not v, given
    for bad in ("null", "*", "https://*.example.org", "http://example.org", "ftp://example.org",
                "https://example.org/path", "https://user@example.org", "https://example.org?x=1",
                "https://example.org:99999", "example.org", "https://", "https://exa mple.org"):
        v = Violations()
        assert normalize_origin(bad, "o", v) is None and v, bad


async def test_origins_are_stored_checked_and_isolated(stubs, tenant, other_tenant):
    origin = f"https://front-{uuid.uuid4().hex[:8]}.example.org"
    org = await _set(stubs, tenant, [origin, "http://localhost:5173", origin])
    assert list(org.allowed_origins) == [origin, "http://localhost:5173"]  # duplicates dropped
    got = (await stubs.organizations.GetOrganization(opb.GetOrganizationRequest(), metadata=tenant.md)).organization
    assert list(got.allowed_origins) == [origin, "http://localhost:5173"]
    # unchanged by an update of another field
    renamed = (await stubs.organizations.UpdateOrganization(opb.UpdateOrganizationRequest(
        organization=organization_pb2.Organization(name="Renamed"),
        update_mask=field_mask_pb2.FieldMask(paths=["name"])), metadata=tenant.md)).organization
    assert list(renamed.allowed_origins) == [origin, "http://localhost:5173"]

    async def check(o: str, org_id: str) -> bool:
        return (await stubs.organizations.CheckAllowedOrigin(
            opb.CheckAllowedOriginRequest(origin=o, organization_id=org_id))).allowed  # no token needed

    assert await check(origin, tenant.org_id) and await check(origin, "")
    assert not await check(origin, other_tenant.org_id)
    assert not await check(origin.upper(), "") and not await check(origin + "/", "")  # as stored, exactly
    assert not await check(origin, "not-an-id")

    # Row-level security: the service's role sees its tenant's rows, or the asked origin's rows only.
    conn = await asyncpg.connect(plain_dsn(ServiceSettings().app_database_url("identity")))
    try:
        await _set(stubs, other_tenant, ["https://other.example.org"])
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.tenant_id', $1, true)", other_tenant.org_id)
            rows = await conn.fetch("SELECT organization_id::text, origin FROM identity.organization_origins")
            assert {r["organization_id"] for r in rows} == {other_tenant.org_id}
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.cors_origin', $1, true)", origin)
            rows = await conn.fetch("SELECT organization_id::text, origin FROM identity.organization_origins")
            assert [(r["organization_id"], r["origin"]) for r in rows] == [(tenant.org_id, origin)]
            e = None
            try:
                await conn.execute("INSERT INTO identity.organization_origins (organization_id, origin, position) "
                                   "VALUES ($1, 'https://sneaky.example.org', 9)", uuid.UUID(tenant.org_id))
            except asyncpg.PostgresError as exc:
                e = exc
            assert isinstance(e, asyncpg.InsufficientPrivilegeError)  # the lookup policy only reads
    finally:
        await conn.close()

    cleared = await _set(stubs, tenant, [])
    assert list(cleared.allowed_origins) == [] and not await check(origin, "")


async def test_too_many_or_invalid_origins_are_refused(stubs, tenant):
    e = await fails(_set(stubs, tenant, [f"https://a{i}.example.org" for i in range(21)]))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    e = await fails(_set(stubs, tenant, ["https://ok.example.org", "https://x.example.org/app"]))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(field_violations(e)) == ["organization.allowed_origins[1]"]
