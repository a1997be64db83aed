"""The HTTP/JSON gateway on the real servers: every example the docs show, through HTTP."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest

from tests.conftest import PASSWORD


@pytest.fixture
async def http(gateway_host):
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway_host.bound_port}", timeout=30) as client:
        yield client


async def sign_up(http: httpx.AsyncClient, name: str = "Hope Fund") -> dict:
    email = f"gw-{uuid.uuid4().hex[:10]}@example.org"
    r = await http.post("/v1/auth:signUp", json={"email": email, "password": PASSWORD, "firstName": "Ada",
                                                 "lastName": "Lovelace", "organizationName": name})
    assert r.status_code == 200, r.text
    body = r.json()
    return {"authorization": f"Bearer {body['tokens']['accessToken']}", "x-tenant-id": body["organization"]["id"]}


@pytest.fixture
async def auth(http) -> dict:
    return await sign_up(http)


async def create_donor(http, auth, **fields) -> httpx.Response:
    donor = {"firstName": "Grace", "lastName": "Hopper", "email": f"g-{uuid.uuid4().hex[:8]}@example.org", **fields}
    return await http.post("/v1/donors", json=donor, headers=auth)


async def test_sign_up_create_get_and_record_a_gift(http, auth):
    r = await create_donor(http, auth)
    assert r.status_code == 200, r.text
    donor = r.json()["donor"]
    assert donor["lastName"] == "Hopper" and donor["id"]
    assert r.headers["etag"] == donor["etag"] == 'W/"1"'

    got = await http.get(f"/v1/donors/{donor['id']}", headers=auth)
    assert got.status_code == 200 and got.json()["donor"]["email"] == donor["email"]
    assert got.headers["etag"] == r.headers["etag"]

    gift = {"donorId": donor["id"], "amount": {"currencyCode": "USD", "units": "25", "nanos": 500_000_000},
            "date": {"year": 2025, "month": 3, "day": 14}, "paymentMethod": "PAYMENT_METHOD_CREDIT_CARD"}
    g = await http.post("/v1/donations", json=gift, headers=auth)
    assert g.status_code == 200, g.text
    assert g.json()["donation"]["amount"] == {"currencyCode": "USD", "units": "25", "nanos": 500_000_000}
    listed = await http.get("/v1/donations", params={"donor_id": donor["id"]}, headers=auth)
    assert [d["id"] for d in listed.json()["donations"]] == [g.json()["donation"]["id"]]


async def test_idempotency_key_makes_a_retried_create_return_the_first_result(http, auth):
    key = {"idempotency-key": uuid.uuid4().hex}
    first = await create_donor(http, {**auth, **key}, externalId="x-1")
    again = await create_donor(http, {**auth, **key}, externalId="x-1")
    assert first.status_code == again.status_code == 200
    assert first.json()["donor"]["id"] == again.json()["donor"]["id"]


async def test_list_follows_page_tokens_to_the_end(http, auth):
    ids = {(await create_donor(http, auth, lastName=f"Page{i}")).json()["donor"]["id"] for i in range(5)}
    seen, token, pages = [], "", 0
    while True:
        r = await http.get("/v1/donors", params={"page_size": 2, "page_token": token}, headers=auth)
        assert r.status_code == 200, r.text
        body = r.json()
        seen += [d["id"] for d in body.get("donors", [])]
        pages += 1
        token = body.get("nextPageToken", "")
        if not token:
            break
    assert set(seen) == ids and len(seen) == 5 and pages == 3


async def test_a_bad_field_is_400_with_its_violation(http, auth):
    r = await create_donor(http, auth, email="not an email")
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["status"] == "INVALID_ARGUMENT" and err["code"] == 400
    violations = [v for d in err["details"] if d["@type"].endswith("BadRequest") for v in d["fieldViolations"]]
    assert any(v["field"].endswith("email") for v in violations), err


async def test_bad_json_and_unknown_parameters_are_400_naming_them(http, auth):
    r = await http.post("/v1/donors", content=b"{not json", headers=auth)
    assert r.status_code == 400 and r.json()["error"]["status"] == "INVALID_ARGUMENT"
    r = await http.get("/v1/donors", params={"no_such_field": "1"}, headers=auth)
    assert r.status_code == 400
    assert "no_such_field" in json.dumps(r.json()["error"]["details"])
    r = await http.get("/v1/donors", params={"page_size": "many"}, headers=auth)
    assert r.status_code == 400


async def test_another_tenants_id_is_404(http, auth):
    donor = (await create_donor(http, auth)).json()["donor"]
    other = await sign_up(http, "Other Org")
    r = await http.get(f"/v1/donors/{donor['id']}", headers=other)
    assert r.status_code == 404 and r.json()["error"]["status"] == "NOT_FOUND"


async def test_a_stale_etag_is_409_aborted(http, auth):
    donor = (await create_donor(http, auth)).json()["donor"]
    stale = donor["etag"]
    ok = await http.patch(f"/v1/donors/{donor['id']}", params={"update_mask": "first_name"},
                          json={"firstName": "Amazing"}, headers={**auth, "if-match": stale})
    assert ok.status_code == 200, ok.text
    assert ok.json()["donor"]["firstName"] == "Amazing" and ok.headers["etag"] != stale
    r = await http.patch(f"/v1/donors/{donor['id']}", params={"update_mask": "firstName"},
                         json={"firstName": "Again"}, headers={**auth, "if-match": stale})
    assert r.status_code == 409 and r.json()["error"]["status"] == "ABORTED"


async def test_no_token_is_401_and_unknown_routes_404_or_405(http):
    r = await http.get("/v1/donors")
    assert r.status_code == 401 and r.json()["error"]["status"] == "UNAUTHENTICATED"
    assert (await http.get("/v1/nothing-here")).status_code == 404
    r = await http.put("/v1/donors/abc")
    assert r.status_code == 405 and "GET" in r.headers["allow"]


async def test_export_streams_ndjson_and_sse(http, auth):
    for i in range(3):
        await create_donor(http, auth, lastName=f"Export{i}")
    async with http.stream("GET", "/v1/donors:export", params={"chunk_size": 2}, headers=auth) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) async for line in r.aiter_lines() if line]
    assert len(lines) == 2 and all("result" in line for line in lines)
    assert sorted(d["lastName"] for line in lines for d in line["result"]["donors"]) == ["Export0", "Export1",
                                                                                        "Export2"]
    r = await http.get("/v1/donors:export", params={"format": "EXPORT_FORMAT_CSV"},
                       headers={**auth, "accept": "text/event-stream"})
    assert r.headers["content-type"].startswith("text/event-stream")
    events = [block for block in r.text.split("\n\n") if block]
    assert events and all(e.startswith("event: result\ndata: {") for e in events)


async def test_a_stream_refused_before_its_first_message_is_a_plain_error(http):
    r = await http.get("/v1/donors:export")
    assert r.status_code == 401 and r.json()["error"]["status"] == "UNAUTHENTICATED"


async def test_import_streams_a_chunked_csv_body(http, auth):
    rows = "external_id,first_name,last_name,email\n" + "".join(
        f"imp-{i},Ima,Porter{i},imp{i}@example.org\n" for i in range(50))

    async def chunks():
        data = rows.encode()
        for i in range(0, len(data), 100):
            yield data[i:i + 100]

    r = await http.post("/v1/donors:import", content=chunks(), headers={**auth, "content-type": "text/csv"})
    assert r.status_code == 200, r.text
    last = [json.loads(line) for line in r.text.splitlines() if line][-1]["result"]
    assert last["done"] and last["created"] == "50" and last.get("rejected", "0") == "0"


async def test_limits_on_headers_and_body(http, auth):
    r = await http.post("/v1/donors", content=b"{" + b" " * (2 << 20) + b"}", headers=auth)
    assert r.status_code == 413
    r = await http.get("/v1/donors", headers={**auth, "x-padding": "a" * (20 << 10)})
    assert r.status_code == 431
    r = await http.get("/v1/donors", params={"page_token": "a" * (9 << 10)}, headers=auth)
    assert r.status_code == 414 and r.json()["error"]["status"] == "INVALID_ARGUMENT"


async def test_deadline_header_and_request_id(http, auth):
    r = await http.get("/v1/donors", headers={**auth, "grpc-timeout": "1n"})
    assert r.status_code == 504 and r.json()["error"]["status"] == "DEADLINE_EXCEEDED"
    r = await http.get("/v1/donors", headers={**auth, "x-request-timeout": "soon"})
    assert r.status_code == 400
    r = await http.get("/v1/donors", headers={**auth, "x-request-id": "req-123"})
    assert r.headers["x-request-id"] == "req-123"


async def test_a_huge_request_target_is_refused_not_buffered(gateway_host):
    """A megabyte of URL: refused (by the HTTP server or the gateway), never a 500."""
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway_host.bound_port)
    writer.write(b"GET /v1/donors?page_token=" + b"a" * (1 << 20) + b" HTTP/1.1\r\nhost: x\r\n\r\n")
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    assert status.split()[1] in (b"400", b"414", b"431"), status


async def test_health_endpoints(http):
    assert (await http.get("/healthz")).status_code == 200
    assert (await http.get("/readyz")).status_code == 200
