"""CORS per organization: an organization lists its origins (PATCH /v1/organization, identity
validates them); the gateway answers preflights for any organization's origin and lets a page
read a response only for the organization (x-tenant-id) that allows its origin."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.gateway.test_gateway import sign_up
from tests.helpers import eventually

PREFLIGHT = {"access-control-request-method": "GET", "access-control-request-headers": "authorization,x-tenant-id"}


@pytest.fixture
async def http(gateway_host):
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway_host.bound_port}", timeout=30) as client:
        yield client


def new_origin() -> str:
    return f"https://app-{uuid.uuid4().hex[:8]}.example.org"


async def set_origins(http, auth, origins: list[str]) -> httpx.Response:
    return await http.patch("/v1/organization", params={"update_mask": "allowed_origins"},
                            json={"allowedOrigins": origins}, headers=auth)


async def test_an_organizations_origins_are_allowed_for_that_organization_only(http):
    mine, theirs = await sign_up(http, "Cors Fund"), await sign_up(http, "Other Fund")
    origin, stranger = new_origin(), new_origin()
    r = await set_origins(http, mine, [origin.upper() + ":443/", "http://localhost:3000"])
    assert r.status_code == 200, r.text
    assert r.json()["organization"]["allowedOrigins"] == [origin, "http://localhost:3000"]

    # The preflight names no organization: allowed because some organization allows the origin.
    pre = await http.options("/v1/donors", headers={"origin": origin, **PREFLIGHT})
    assert pre.status_code == 204, pre.text
    assert pre.headers["access-control-allow-origin"] == origin
    assert set(pre.headers["access-control-allow-methods"].split(", ")) == {"GET", "POST"}
    assert "x-tenant-id" in pre.headers["access-control-allow-headers"]
    assert "origin" in pre.headers["vary"].lower() and "access-control-allow-credentials" not in pre.headers
    refused = await http.options("/v1/donors", headers={"origin": stranger, **PREFLIGHT})
    assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers
    assert refused.json()["error"]["details"][0]["reason"] == "CORS_ORIGIN_NOT_ALLOWED"

    # A real request: readable only for the organization that allows the origin.
    ok = await http.get("/v1/donors", headers={**mine, "origin": origin})
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == origin
    assert "etag" in ok.headers["access-control-expose-headers"] and ok.headers["vary"] == "Origin"
    other = await http.get("/v1/donors", headers={**theirs, "origin": origin})
    assert other.status_code == 200 and "access-control-allow-origin" not in other.headers
    assert other.headers["vary"] == "Origin"
    assert "access-control-allow-origin" not in (await http.get("/v1/donors", headers={**mine, "origin": stranger})
                                                 ).headers
    # An error response is readable too (the page must see its 404), and no Origin: no CORS, Vary still.
    missing = await http.get(f"/v1/donors/{uuid.uuid4()}", headers={**mine, "origin": origin})
    assert missing.status_code == 404 and missing.headers["access-control-allow-origin"] == origin
    plain = await http.get("/v1/donors", headers=mine)
    assert "access-control-allow-origin" not in plain.headers and plain.headers["vary"] == "Origin"

    # A call that names no organization yet (login): any organization's origin may read it.
    login = await http.post("/v1/auth:login", json={"email": "nobody@example.org", "password": "x" * 12},
                            headers={"origin": "http://localhost:3000"})
    assert login.headers["access-control-allow-origin"] == "http://localhost:3000"

    # Removed: refused again once the gateway's cached answer expires (0.5 s in the tests).
    assert (await set_origins(http, mine, [])).status_code == 200

    async def gone() -> bool:
        r = await http.get("/v1/donors", headers={**mine, "origin": origin})
        pre = await http.options("/v1/donors", headers={"origin": origin, **PREFLIGHT})
        return "access-control-allow-origin" not in r.headers and pre.status_code == 403

    await eventually(gone, what="the removed origin refused")


async def test_the_deployments_own_origins_are_allowed_everywhere(http):
    auth = await sign_up(http)
    pre = await http.options("/v1/donors/abc", headers={"origin": "https://app.example.org",
                                                        "access-control-request-method": "PATCH"})
    assert pre.status_code == 204 and pre.headers["access-control-allow-origin"] == "https://app.example.org"
    r = await http.get("/v1/donors", headers={**auth, "origin": "https://app.example.org"})
    assert r.headers["access-control-allow-origin"] == "https://app.example.org"


async def test_preflights_for_no_route_or_another_verb_and_plain_options(http):
    origin = {"origin": "https://app.example.org"}
    r = await http.options("/v1/nothing-here", headers={**origin, "access-control-request-method": "GET"})
    assert r.status_code == 404 and "access-control-allow-origin" not in r.headers
    r = await http.options("/v1/donors", headers={**origin, "access-control-request-method": "DELETE"})
    assert r.status_code == 405 and "access-control-allow-origin" not in r.headers
    r = await http.options("/v1/donors")  # not a preflight: no route takes OPTIONS
    assert r.status_code == 405 and r.json()["error"]["status"] == "UNIMPLEMENTED"
    # Junk origins are refused without a lookup.
    for junk in ("null", "https://*.example.org", "javascript:alert(1)", "https://" + "a" * 400 + ".org"):
        r = await http.options("/v1/donors", headers={"origin": junk, **PREFLIGHT})
        assert r.status_code == 403, junk


async def test_invalid_origins_are_400_naming_each(http):
    auth = await sign_up(http)
    r = await set_origins(http, auth, ["https://ok.example.org", "http://plain.example.org", "https://*.example.org",
                                       "https://x.example.org/path", "null"])
    assert r.status_code == 400
    fields = {v["field"] for d in r.json()["error"]["details"] for v in d.get("fieldViolations", [])}
    assert fields == {f"organization.allowed_origins[{i}]" for i in (1, 2, 3, 4)}
    r = await set_origins(http, auth, [f"https://a{i}.example.org" for i in range(21)])
    assert r.status_code == 400
