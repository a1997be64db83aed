"""Client-streamed uploads through the gateway (POST /v1/donors:import): a malformed body is a
400 (413 for sizes) whose google.rpc.Status names the problem, never a 500; hostile bodies are
bounded."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid

import httpx
import pytest

from tests.gateway.test_gateway import sign_up

CSV = "external_id,first_name,last_name\n"


@pytest.fixture
async def http(gateway_host):
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway_host.bound_port}", timeout=30) as client:
        yield client


@pytest.fixture
async def auth(http) -> dict:
    return await sign_up(http)


def violations(r: httpx.Response) -> dict[str, str]:
    err = r.json()["error"]
    return {v["field"]: v["description"] for d in err["details"] for v in d.get("fieldViolations", [])}


def rows(n: int, tag: str) -> str:
    return CSV + "".join(f"{tag}-{i},Ima,Porter{i}\n" for i in range(n))


def ndjson_line(csv: str) -> bytes:
    return json.dumps({"csvChunk": base64.b64encode(csv.encode()).decode()}).encode() + b"\n"


async def imported(http, auth, tag: str) -> int:
    r = await http.get("/v1/donors", params={"page_size": 100}, headers=auth)
    return sum(1 for d in r.json().get("donors", []) if d.get("externalId", "").startswith(tag))


async def import_(http, auth, content, ctype: str) -> httpx.Response:
    return await http.post("/v1/donors:import", content=content, headers={**auth, "content-type": ctype})


async def test_ndjson_upload_imports(http, auth):
    r = await import_(http, auth, ndjson_line(rows(3, "nd")), "application/x-ndjson")
    assert r.status_code == 200, r.text
    assert [json.loads(x) for x in r.text.splitlines()][-1]["result"]["created"] == "3"


@pytest.mark.parametrize("bad, field, words", [
    (b"{not json\n", "line 2", "not a JSON document"),
    (b'{"noSuchField": 1}\n', "line 2", "noSuchField"),
    (b'{"csvChunk": "\xff\xfe\xfa"}\n', "line 2", "UTF-8"),
    (b"[" * 100_000 + b"\n", "line 2", "nested too deeply"),
    (b'{"rows": {"donors": [{"customFields": ' + b'{"a": ' * 30 + b"1" + b"}" * 30 + b"}]}}\n", "line 2", "deep"),
])
async def test_a_bad_ndjson_line_is_400_naming_it(http, auth, bad, field, words):
    tag = f"bad-{uuid.uuid4().hex[:6]}"
    r = await import_(http, auth, ndjson_line(rows(2, tag)) + bad + ndjson_line(rows(2, tag + "x")),
                      "application/x-ndjson")
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["status"] == "INVALID_ARGUMENT" and field in err["message"]
    assert words.lower() in violations(r)[field].lower(), violations(r)


async def test_nesting_within_the_limit_reaches_the_service(http, auth):
    """32 levels pass the gateway and decode in the service (a Struct costs protobuf 3 levels each)."""
    custom = b"{\"a\": " * 27 + b"1" + b"}" * 27
    line = b'{"rows": {"donors": [{"externalId": "deep-1", "lastName": "Deep", "customFields": ' + custom + b"}]}}\n"
    r = await import_(http, auth, line, "application/x-ndjson")
    assert r.status_code in (200, 400), r.text  # the service may refuse such custom fields, never a 500
    r = await http.post("/v1/donors", json={"lastName": "Deep", "customFields": json.loads(custom)}, headers=auth)
    assert r.status_code in (200, 400), r.text
    deeper = {"lastName": "Deep", "customFields": json.loads(b"{\"a\": " * 40 + b"1" + b"}" * 40)}
    r = await http.post("/v1/donors", json=deeper, headers=auth)
    assert r.status_code == 400 and "nested too deeply" in violations(r)["body"]


async def test_a_line_over_the_limit_is_413_and_never_buffered_whole(http, auth):
    async def endless():
        yield b'{"csvChunk": "'
        for _ in range(64):  # 4 MiB without a newline; the gateway gives up after 1 MiB
            yield b"A" * (64 << 10)

    r = await import_(http, auth, endless(), "application/x-ndjson")
    assert r.status_code == 413 and "line 1" in violations(r)


def multipart(boundary: str, *parts: tuple[str, str | None, bytes], close: bool = True) -> bytes:
    out = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\nContent-Type: text/csv\r\n\r\n".encode()
        out += data + b"\r\n"
    return out + (f"--{boundary}--\r\n".encode() if close else b"")


async def test_a_multipart_file_upload_imports_in_chunks(http, auth):
    tag = f"mp-{uuid.uuid4().hex[:6]}"
    body = multipart("XyZ", ("file", "donors.csv", rows(40, tag).encode()))

    async def pieces():
        for i in range(0, len(body), 37):  # split anywhere, boundaries included
            yield body[i:i + 37]

    r = await import_(http, auth, pieces(), "multipart/form-data; boundary=XyZ")
    assert r.status_code == 200, r.text
    assert [json.loads(x) for x in r.text.splitlines()][-1]["result"]["created"] == "40"
    assert await imported(http, auth, tag) == 40


@pytest.mark.parametrize("body, ctype, words", [
    (multipart("B", ("file", "d.csv", CSV.encode()), close=False), "multipart/form-data; boundary=B",
     "closing boundary"),
    (b"this is not multipart at all\r\n", "multipart/form-data; boundary=B", ""),
    (multipart("B", ("file", "d.csv", CSV.encode()), ("note", None, b"hi")), "multipart/form-data; boundary=B",
     "unexpected form field"),
    (multipart("B", ("file", "a.csv", CSV.encode()), ("file", "b.csv", CSV.encode())),
     "multipart/form-data; boundary=B", "more than one file"),
    (multipart("B", ("note", None, b"hi")), "multipart/form-data; boundary=B", "unexpected form field"),
    (multipart("B", ("file", "d.csv", CSV.encode())), "multipart/form-data", "boundary"),
])
async def test_a_malformed_multipart_body_is_400_naming_it(http, auth, body, ctype, words):
    r = await import_(http, auth, body, ctype)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["status"] == "INVALID_ARGUMENT"
    found = violations(r)
    assert set(found) <= {"multipart", "content-type"} and found, found
    assert words in " ".join(found.values()), found


async def test_a_broken_chunked_framing_is_refused_before_the_app(gateway_host, auth):
    """A chunk whose size line is not hexadecimal: the HTTP server refuses it (400) and the
    gateway neither answers 500 nor logs an error (tests/server_errors fails on one)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway_host.bound_port)
    head = (f"POST /v1/donors:import HTTP/1.1\r\nhost: x\r\ncontent-type: text/csv\r\n"
            f"authorization: {auth['authorization']}\r\nx-tenant-id: {auth['x-tenant-id']}\r\n"
            f"transfer-encoding: chunked\r\n\r\n")
    writer.write(head.encode() + b"5\r\nexter\r\nZZ\r\nnal_id\r\n0\r\n\r\n")
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    assert status.split()[1] == b"400", status
