"""Platform service principals and their tenant tokens (identity's IssueTenantToken, the
operator command, chassis.tenant_tokens) against the real servers: tenancy, narrowed
permissions, audience binding, revocation, removed organizations, the actor in the audit trail."""

import asyncio
import os
import sys
import uuid

import grpc
import jwt
import pytest
from givance.billing.v1 import plan_service_pb2
from givance.crm.v1 import donor_service_pb2
from givance.identity.v1 import audit_service_pb2 as apb
from givance.identity.v1 import membership_service_pb2 as mpb
from givance.identity.v1 import tenant_token_service_pb2 as tpb
from givance.identity.v1 import tenant_token_service_pb2_grpc

from chassis.errors import NotFound, PermissionDenied, Unauthenticated
from chassis.tenant_tokens import TenantTokens, dev_secret
from tests.helpers import error_reason, eventually, fails, gift, invalid, new_donor


async def principals(*args: str, ok: bool = True) -> str:
    """The operator command (python -m services.identity.principals), run as an operator runs it."""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "services.identity.principals", *args,
                                                env=os.environ.copy(), stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert (proc.returncode == 0) == ok, (out.decode(), err.decode())
    return out.decode() if ok else err.decode()


@pytest.fixture
def identity_address(identity_host) -> str:
    return f"127.0.0.1:{identity_host.bound_port}"


@pytest.fixture
async def ai_tokens(identity_address):
    """ai's development principal (tests/conftest.py sets them up as `make run` does)."""
    tokens = TenantTokens(identity_address, "ai", dev_secret("ai"))
    yield tokens
    await tokens.close()


def claims(md) -> dict:
    return jwt.decode(dict(md)["authorization"].removeprefix("Bearer "), options={"verify_signature": False})


async def test_a_tenant_token_reads_its_tenant_only(stubs, tenant, other_tenant, ai_tokens):
    mine = (await stubs.donors.CreateDonor(new_donor(first_name="Mine"), metadata=tenant.md)).donor
    theirs = (await stubs.donors.CreateDonor(new_donor(first_name="Theirs"), metadata=other_tenant.md)).donor
    md = await ai_tokens.metadata(tenant.org_id)
    assert dict(md)["x-tenant-id"] == tenant.org_id
    c = claims(md)
    assert c["org"] == tenant.org_id and c["act"] == {"sub": "service:ai"} and c["kind"] == "platform_service"
    assert sorted(c["aud"]) == ["givance.comms", "givance.crm"]
    assert (await stubs.donors.GetDonor(donor_service_pb2.GetDonorRequest(id=mine.id), metadata=md)).donor.id == mine.id
    # another tenant's donor does not exist for it (row-level security as for any token)
    await fails(stubs.donors.GetDonor(donor_service_pb2.GetDonorRequest(id=theirs.id), metadata=md),
                grpc.StatusCode.NOT_FOUND)
    listed = (await stubs.donors.ListDonors(donor_service_pb2.ListDonorsRequest(page_size=100), metadata=md)).donors
    assert [d.id for d in listed] == [mine.id]
    # and it cannot be pointed at the other tenant
    crossed = ((md[0]), ("x-tenant-id", other_tenant.org_id))
    await fails(stubs.donors.ListDonors(donor_service_pb2.ListDonorsRequest(), metadata=crossed),
                grpc.StatusCode.PERMISSION_DENIED)


async def test_no_more_than_the_grant(stubs, tenant, ai_tokens, identity_address):
    md = await ai_tokens.metadata(tenant.org_id)
    # ai's principal reads gifts; it was not granted to record them
    donor = (await stubs.donors.CreateDonor(new_donor(), metadata=tenant.md)).donor
    e = await fails(stubs.donations.RecordDonation(gift(donor.id), metadata=md), grpc.StatusCode.PERMISSION_DENIED)
    assert error_reason(e) == "PERMISSION_MISSING"
    # nor can it ask for more than its grant
    wider = TenantTokens(identity_address, "ai", dev_secret("ai"), permissions=["crm.donations.write"])
    with pytest.raises(PermissionDenied, match=r"not granted crm\.donations\.write"):
        await wider.metadata(tenant.org_id)
    # a narrower token carries only what was asked, and is bound to that service alone
    narrow = TenantTokens(identity_address, "ai", dev_secret("ai"), permissions=["crm.donors.read"])
    try:
        c = claims(await narrow.metadata(tenant.org_id))
        assert c["perms"] == ["crm.donors.read"] and c["aud"] == ["givance.crm"]
    finally:
        await narrow.close()
        await wider.close()


async def test_the_audience_binds_it_to_the_services_of_its_permissions(stubs, hosts, tenant, identity_address,
                                                                     ai_tokens):
    md = await ai_tokens.metadata(tenant.org_id)
    # identity and billing are not its audience: a valid signature is not enough
    e = await fails(stubs.members.ListMembers(mpb.ListMembersRequest(), metadata=md), grpc.StatusCode.UNAUTHENTICATED)
    assert "Audience" in e.details()
    await fails(stubs.plans.ListPlans(plan_service_pb2.ListPlansRequest(), metadata=md),
                grpc.StatusCode.UNAUTHENTICATED)
    # crm's token is for comms (and for comms to read donors from crm with), not for ai
    crm_tokens = TenantTokens(identity_address, "crm", dev_secret("crm"))
    try:
        c = claims(await crm_tokens.metadata(tenant.org_id))
        assert sorted(c["perms"]) == ["comms.messages.send", "crm.donors.read"] and c["act"]["sub"] == "service:crm"
        assert "givance.ai" not in c["aud"] and "givance" not in c["aud"]
    finally:
        await crm_tokens.close()


async def test_bad_credentials_and_bad_input(stubs, tenant, identity_address):
    stub = tenant_token_service_pb2_grpc.TenantTokenServiceStub(stubs.identity_channel)
    for client_id, secret in (("ai", "wrong"), ("nobody", dev_secret("ai"))):
        e = await fails(stub.IssueTenantToken(tpb.IssueTenantTokenRequest(
            client_id=client_id, client_secret=secret, organization_id=tenant.org_id)), grpc.StatusCode.UNAUTHENTICATED)
        assert e.details() == "invalid client credentials"
    await invalid(stub.IssueTenantToken(tpb.IssueTenantTokenRequest(client_id="ai", client_secret="x",
                                                                    organization_id="nope")), "organization_id")
    await invalid(stub.IssueTenantToken(tpb.IssueTenantTokenRequest(client_secret="x", organization_id=tenant.org_id)),
                  "client_id")
    await invalid(stub.IssueTenantToken(tpb.IssueTenantTokenRequest(
        client_id="ai", client_secret="x" * 201, organization_id=tenant.org_id)), "client_secret")
    await invalid(stub.IssueTenantToken(tpb.IssueTenantTokenRequest(
        client_id="ai", client_secret="x", organization_id=tenant.org_id, permissions=["p"] * 51)), "permissions")
    # an organization that does not exist gets nothing
    with pytest.raises(NotFound):
        await TenantTokens(identity_address, "ai", dev_secret("ai")).metadata(uuid.uuid4())


async def test_a_removed_organization_gets_nothing(stubs, identity_address, admin_db):
    gone = await stubs.sign_up("Closing Down")
    tokens = TenantTokens(identity_address, "ai", dev_secret("ai"))
    try:
        await tokens.metadata(gone.org_id)
        await admin_db.execute("UPDATE identity.organizations SET deleted_at = now() WHERE id = $1",
                               uuid.UUID(gone.org_id))
        tokens.forget(gone.org_id)
        with pytest.raises(NotFound, match="not found"):
            await tokens.metadata(gone.org_id)
    finally:
        await tokens.close()


async def test_the_operator_command_creates_narrows_rotates_and_revokes(stubs, tenant, identity_address, admin_db):
    name = f"t-{uuid.uuid4().hex[:8]}"
    out = await principals("create", name, "crm.donors.read", "crm.donations.read")
    secret = out.strip().splitlines()[-1]
    assert await admin_db.fetchval("SELECT secret_hash <> $2 FROM identity.service_principals WHERE name = $1",
                                   name, secret.encode())  # stored hashed
    assert "exists" in await principals("create", name, "crm.donors.read", ok=False)
    for bad in (("create", "Bad Name", "crm.donors.read"), ("create", "x1", "platform.kyc.review"),
                ("create", "x2", "crm.*"), ("create", "x3", "crm.nothing.read")):
        await principals(*bad, ok=False)
    tokens = TenantTokens(identity_address, name, secret)
    try:
        md = await tokens.metadata(tenant.org_id)
        await stubs.donors.ListDonors(donor_service_pb2.ListDonorsRequest(), metadata=md)
        # narrowed: its tokens holding crm.donations.read stop working; the next one lacks it
        await principals("grant", name, "crm.donors.read")
        await eventually(lambda: _refused(stubs, md), what="the narrowed principal's old token refused")
        tokens.forget(tenant.org_id)
        assert claims(await tokens.metadata(tenant.org_id))["perms"] == ["crm.donors.read"]
        # rotated: the old secret gets nothing
        new_secret = (await principals("rotate", name)).strip().splitlines()[-1]
        tokens.forget(tenant.org_id)
        with pytest.raises(Unauthenticated):
            await tokens.metadata(tenant.org_id)
        await tokens.close()
        tokens = TenantTokens(identity_address, name, new_secret)
        md = await tokens.metadata(tenant.org_id)
        await stubs.donors.ListDonors(donor_service_pb2.ListDonorsRequest(), metadata=md)
        # revoked: no more tokens, and the one it holds stops working on every service
        assert "revoked" in await principals("revoke", name)
        tokens.forget(tenant.org_id)
        with pytest.raises(Unauthenticated, match="revoked"):
            await tokens.metadata(tenant.org_id)
        await eventually(lambda: _refused(stubs, md), what="the revoked principal's token refused by crm")
        listed = await principals("list")
        assert any(line.startswith(f"{name}\t") and "revoked" in line for line in listed.splitlines())
    finally:
        await tokens.close()
    actions = await admin_db.fetch("SELECT action FROM identity.platform_activity WHERE detail->>'name' = $1 "
                                   "ORDER BY id", name)
    assert [a["action"] for a in actions] == ["platform.service_principal.create", "platform.service_principal.grant",
                                              "platform.service_principal.rotate", "platform.service_principal.revoke"]


async def _refused(stubs, md) -> bool:
    try:
        await stubs.donors.ListDonors(donor_service_pb2.ListDonorsRequest(), metadata=md)
    except grpc.aio.AioRpcError as e:
        return e.code() == grpc.StatusCode.UNAUTHENTICATED
    return False


async def test_the_service_is_the_actor_in_the_audit_trail(stubs, tenant, other_tenant, ai_tokens):
    donor = (await stubs.donors.CreateDonor(new_donor(), metadata=tenant.md)).donor
    md = await ai_tokens.metadata(tenant.org_id)
    await stubs.donors.GetDonor(donor_service_pb2.GetDonorRequest(id=donor.id), metadata=md)

    async def entries():
        resp = await stubs.audit.ListActivity(apb.ListActivityRequest(actor_id="service:ai", page_size=50),
                                              metadata=tenant.md)
        got = {(e.action, e.resource_id) for e in resp.entries}
        return ("crm.donor.read", donor.id) in got and resp.entries
    found = await eventually(entries, what="crm's audited read by service:ai")
    kinds = {e.actor_kind for e in found}
    assert kinds == {"platform_service"}
    # the exchange itself is in the tenant's trail
    assert any(e.action == "identity.tenant_token.issue" for e in found)
    # another tenant's trail holds none of it
    other = await stubs.audit.ListActivity(apb.ListActivityRequest(actor_id="service:ai"), metadata=other_tenant.md)
    assert list(other.entries) == []
