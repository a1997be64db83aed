"""The interceptor refuses every token that is not a valid EdDSA access token for this tenant."""

import time
import uuid

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from givance.crm.v1 import donor_service_pb2 as pb

from chassis.auth import ACCESS_TOKEN_TYPE, AUDIENCE, ISSUER


def _signing(identity_host):
    keys = identity_host.registrations[0].servicer.deps.keys
    return keys._private, keys.kid


def _claims(tenant, **over):
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": tenant.user_id, "org": tenant.org_id, "role": "owner",
              "perms": ["*"], "jti": uuid.uuid4().hex, "iat": now, "nbf": now, "exp": now + 600}
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not None}


def _md(token, tenant):
    return (("authorization", f"Bearer {token}"), ("x-tenant-id", tenant.org_id))


async def _code(stubs, md):
    try:
        await stubs.donors.ListDonors(pb.ListDonorsRequest(), metadata=md)
    except grpc.aio.AioRpcError as e:
        return e.code()
    return grpc.StatusCode.OK


async def test_a_well_formed_forged_token_is_accepted_only_with_the_real_key(stubs, identity_host, tenant):
    key, kid = _signing(identity_host)
    good = jwt.encode(_claims(tenant), key, algorithm="EdDSA", headers={"kid": kid, "typ": ACCESS_TOKEN_TYPE})
    assert await _code(stubs, _md(good, tenant)) == grpc.StatusCode.OK  # the baseline: this shape passes


@pytest.mark.parametrize("case", [
    "none", "hmac", "wrong_issuer", "wrong_audience", "wrong_type", "future_nbf", "unknown_kid", "expired",
    "tampered", "wrong_key", "no_org", "garbage",
])
async def test_bad_tokens_are_unauthenticated(stubs, identity_host, tenant, case):
    key, kid = _signing(identity_host)
    headers = {"kid": kid, "typ": ACCESS_TOKEN_TYPE}
    now = int(time.time())
    if case == "none":
        token = jwt.encode(_claims(tenant), None, algorithm="none", headers=headers)
    elif case == "hmac":
        token = jwt.encode(_claims(tenant), "secret" * 8, algorithm="HS256", headers=headers)
    elif case == "wrong_issuer":
        token = jwt.encode(_claims(tenant, iss="evil"), key, algorithm="EdDSA", headers=headers)
    elif case == "wrong_audience":
        token = jwt.encode(_claims(tenant, aud="other"), key, algorithm="EdDSA", headers=headers)
    elif case == "wrong_type":
        token = jwt.encode(_claims(tenant), key, algorithm="EdDSA", headers={"kid": kid, "typ": "JWT"})
    elif case == "future_nbf":
        token = jwt.encode(_claims(tenant, nbf=now + 300), key, algorithm="EdDSA", headers=headers)
    elif case == "unknown_kid":
        token = jwt.encode(_claims(tenant), key, algorithm="EdDSA", headers={"kid": "nope", "typ": ACCESS_TOKEN_TYPE})
    elif case == "expired":
        token = jwt.encode(_claims(tenant, iat=now - 1000, nbf=now - 1000, exp=now - 10), key, algorithm="EdDSA",
                           headers=headers)
    elif case == "tampered":
        head, body, sig = tenant.access_token.split(".")
        sig = ("A" if sig[0] != "A" else "B") + sig[1:]
        token = f"{head}.{body}.{sig}"
    elif case == "wrong_key":
        token = jwt.encode(_claims(tenant), Ed25519PrivateKey.generate(), algorithm="EdDSA", headers=headers)
    elif case == "no_org":
        token = jwt.encode(_claims(tenant, org=None), key, algorithm="EdDSA", headers=headers)
    else:
        token = "not-a-jwt"
    assert await _code(stubs, _md(token, tenant)) == grpc.StatusCode.UNAUTHENTICATED


async def test_missing_token_is_unauthenticated(stubs, tenant):
    assert await _code(stubs, (("x-tenant-id", tenant.org_id),)) == grpc.StatusCode.UNAUTHENTICATED
    assert await _code(stubs, (("authorization", "Basic abc"), ("x-tenant-id", tenant.org_id))) == \
        grpc.StatusCode.UNAUTHENTICATED


async def test_missing_permission_is_permission_denied(stubs, identity_host, tenant):
    key, kid = _signing(identity_host)
    reader = jwt.encode(_claims(tenant, perms=["crm.donors.read"]), key, algorithm="EdDSA",
                        headers={"kid": kid, "typ": ACCESS_TOKEN_TYPE})
    assert await _code(stubs, _md(reader, tenant)) == grpc.StatusCode.OK
    from tests.helpers import fails, new_donor

    await fails(stubs.donors.CreateDonor(new_donor(), metadata=_md(reader, tenant)), grpc.StatusCode.PERMISSION_DENIED)


async def test_missing_tenant_header_is_refused(stubs, tenant):
    md = (("authorization", f"Bearer {tenant.access_token}"),)
    assert await _code(stubs, md) == grpc.StatusCode.PERMISSION_DENIED
