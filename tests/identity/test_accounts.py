import uuid

import grpc
import jwt
import pytest
from givance.identity.v1 import identity_service_pb2 as pb
from givance.identity.v1 import organization_service_pb2 as opb

from tests.conftest import PASSWORD
from tests.helpers import error_reason, fails, field_violations


async def test_sign_up_issues_a_verifiable_owner_token(stubs):
    email = f"owner-{uuid.uuid4().hex[:8]}@Example.org"
    resp = await stubs.identity.SignUp(pb.SignUpRequest(email=email, password=PASSWORD,
                                                        organization_name="Zürich Öko Fund"))
    assert resp.user.email == email.lower() and resp.organization.slug == "zurich-oko-fund"
    assert resp.tokens.role == "owner" and resp.tokens.token_type == "Bearer"
    jwks = (await stubs.identity.GetJwks(pb.GetJwksRequest())).keys
    header = jwt.get_unverified_header(resp.tokens.access_token)
    key = next(k for k in jwks if k.kid == header["kid"])
    claims = jwt.decode(resp.tokens.access_token, jwt.PyJWK({"kty": key.kty, "crv": key.crv, "x": key.x}).key,
                        algorithms=["EdDSA"], audience="givance")
    assert claims["org"] == resp.organization.id and claims["sub"] == resp.user.id
    assert 14 * 60 <= claims["exp"] - claims["iat"] <= 15 * 60
    org = (await stubs.organizations.GetOrganization(opb.GetOrganizationRequest(), metadata=(
        ("authorization", f"Bearer {resp.tokens.access_token}"), ("x-tenant-id", resp.organization.id)))).organization
    assert org.name == "Zürich Öko Fund"


async def test_sign_up_bad_input_names_fields_and_writes_nothing(stubs, admin_db):
    before = await admin_db.fetchval("SELECT count(*) FROM identity.users")
    e = await fails(stubs.identity.SignUp(pb.SignUpRequest(email="nope", password="short", organization_name="",
                                                          organization_slug="-Bad Slug-")))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {"email", "password", "organization_name", "organization_slug"} <= set(field_violations(e))
    assert await admin_db.fetchval("SELECT count(*) FROM identity.users") == before


async def test_duplicate_email_and_slug_are_already_exists(stubs, tenant):
    e = await fails(stubs.identity.SignUp(pb.SignUpRequest(email=tenant.email.upper(), password=PASSWORD,
                                                          organization_name="Again")))
    assert e.code() == grpc.StatusCode.ALREADY_EXISTS
    slug = f"taken-{uuid.uuid4().hex[:6]}"
    await stubs.identity.SignUp(pb.SignUpRequest(email=f"{slug}@example.org", password=PASSWORD,
                                                 organization_name="X", organization_slug=slug))
    e = await fails(stubs.identity.SignUp(pb.SignUpRequest(email=f"b-{slug}@example.org", password=PASSWORD,
                                                          organization_name="Y", organization_slug=slug)))
    assert e.code() == grpc.StatusCode.ALREADY_EXISTS and error_reason(e) == "SLUG_TAKEN"


async def test_derived_slugs_never_collide(stubs):
    a = await stubs.sign_up("Same Name Trust")
    b = await stubs.sign_up("Same Name Trust")
    assert a.org_id != b.org_id


async def test_retried_sign_up_with_request_id_returns_the_first_result(stubs, admin_db):
    rid = uuid.uuid4().hex
    email = f"retry-{rid[:8]}@example.org"
    req = pb.SignUpRequest(email=email, password=PASSWORD, organization_name="Retry Org", request_id=rid)
    first = await stubs.identity.SignUp(req)
    again = await stubs.identity.SignUp(req)
    assert (again.user.id, again.organization.id) == (first.user.id, first.organization.id)
    assert await admin_db.fetchval("SELECT count(*) FROM identity.users WHERE email = $1", email) == 1
    wrong = pb.SignUpRequest(email=email, password=PASSWORD + "x", organization_name="Retry Org", request_id=rid)
    assert (await fails(stubs.identity.SignUp(wrong))).code() == grpc.StatusCode.ALREADY_EXISTS


async def test_login_wrong_password_unknown_email_and_non_member_answer_alike(stubs, tenant, other_tenant):
    errors = [
        await fails(stubs.identity.Login(pb.LoginRequest(email=tenant.email, password="wrong password!!"))),
        await fails(stubs.identity.Login(pb.LoginRequest(email=f"ghost-{uuid.uuid4().hex}@example.org",
                                                        password=PASSWORD))),
        await fails(stubs.identity.Login(pb.LoginRequest(email=tenant.email, password=PASSWORD,
                                                        organization_id=other_tenant.org_id))),
    ]
    assert {e.code() for e in errors} == {grpc.StatusCode.UNAUTHENTICATED}
    assert len({e.details() for e in errors}) == 1


async def test_login_is_case_insensitive_and_picks_the_default_organization(stubs, tenant):
    resp = await stubs.identity.Login(pb.LoginRequest(email=tenant.email.upper(), password=PASSWORD))
    assert resp.tokens.organization_id == tenant.org_id and resp.tokens.access_token


async def test_refresh_rotates_and_reuse_revokes_the_family(stubs, tenant, admin_db):
    login = await stubs.identity.Login(pb.LoginRequest(email=tenant.email, password=PASSWORD))
    r1 = login.tokens.refresh_token
    rotated = (await stubs.identity.RefreshToken(pb.RefreshTokenRequest(refresh_token=r1))).tokens
    assert rotated.refresh_token != r1 and rotated.access_token
    r2 = rotated.refresh_token
    # r1 is replayed (stolen): refused, and the whole family ends, r2 included
    e = await fails(stubs.identity.RefreshToken(pb.RefreshTokenRequest(refresh_token=r1)))
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED
    e = await fails(stubs.identity.RefreshToken(pb.RefreshTokenRequest(refresh_token=r2)))
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED
    # the sign-up session is another family and still works
    ok = await stubs.identity.RefreshToken(pb.RefreshTokenRequest(refresh_token=tenant.refresh_token))
    assert ok.tokens.organization_id == tenant.org_id


@pytest.mark.parametrize("token", ["", "garbage", "0" * 32 + ".x", "zz.yy"])
async def test_bad_refresh_tokens(stubs, token):
    e = await fails(stubs.identity.RefreshToken(pb.RefreshTokenRequest(refresh_token=token)))
    assert e.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNAUTHENTICATED)
    if not token:
        assert "refresh_token" in field_violations(e)


async def test_refresh_tokens_and_passwords_are_not_stored_in_clear(stubs, tenant, admin_db):
    secret = tenant.refresh_token.split(".", 1)[1]
    dump = await admin_db.fetchval(
        "SELECT string_agg(t::text, '|') FROM (SELECT * FROM identity.refresh_tokens) t")
    assert secret not in dump
    users = await admin_db.fetchval("SELECT string_agg(u::text, '|') FROM identity.users u")
    assert "correct horse" not in users and "$argon2id$" in users
    keys = await admin_db.fetchval("SELECT string_agg(private_key_sealed, '|') FROM identity.signing_keys")
    assert keys.startswith("v1.")


async def test_get_organization_of_another_tenant_is_not_found(stubs, tenant, other_tenant):
    e = await fails(stubs.organizations.GetOrganization(opb.GetOrganizationRequest(id=other_tenant.org_id),
                                                  metadata=tenant.md))
    assert e.code() == grpc.StatusCode.NOT_FOUND
    e = await fails(stubs.organizations.GetOrganization(opb.GetOrganizationRequest(id="x"), metadata=tenant.md))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_health_and_reflection_are_served(identity_host, crm_host):
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    for host, service in ((identity_host, "givance.identity.v1.IdentityService"),
                          (crm_host, "givance.crm.v1.DonorService")):
        async with grpc.aio.insecure_channel(f"127.0.0.1:{host.bound_port}") as ch:
            resp = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=service))
            assert resp.status == health_pb2.HealthCheckResponse.SERVING
            stub = reflection_pb2_grpc.ServerReflectionStub(ch)
            names = []
            async for r in stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])):
                names += [s.name for s in r.list_services_response.service]
            assert service in names
