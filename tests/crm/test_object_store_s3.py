"""The S3 object store against a real S3-compatible server: moto's server mode, started here on
127.0.0.1 on a free port, spoken to by aiobotocore as it would speak to AWS or MinIO."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid

import pytest
from moto.server import ThreadedMotoServer

from services.crm.providers.object_store import PART_BYTES, PART_CONCURRENCY, S3ObjectStore


@pytest.fixture(scope="module")
def s3_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
async def s3(s3_endpoint):
    store = S3ObjectStore(bucket=f"docs-{uuid.uuid4().hex[:8]}", endpoint_url=s3_endpoint, region="us-east-1",
                          access_key_id="testing", secret_access_key="testing")
    await store.ensure_bucket()
    yield store
    await store.close()


async def _chunks(data: bytes, size: int = 256 * 1024):
    for i in range(0, len(data), size):
        yield data[i:i + size]


async def _read(store, key: str) -> bytes:
    return b"".join([c async for c in store.get(key)])


async def test_multipart_upload_and_streamed_download(s3):
    data = os.urandom(PART_BYTES + 3 * 1024 * 1024 + 17)  # two parts
    assert await s3.put("org/big", _chunks(data)) == len(data)
    got = await _read(s3, "org/big")
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    s3_client = await s3._s3()
    head = await s3_client.head_object(Bucket=s3.bucket, Key="org/big")
    assert head["ContentLength"] == len(data) and "-2" in head["ETag"]  # a multipart object of 2 parts


def _spy_parts(client, fail_part: int = 0) -> dict:
    """Counts the parts on their way at once (and fails one, when told)."""
    seen = {"now": 0, "most": 0, "numbers": []}
    real = client.upload_part

    async def upload_part(**kw):
        seen["now"] += 1
        seen["most"] = max(seen["most"], seen["now"])
        seen["numbers"].append(kw["PartNumber"])
        try:
            await asyncio.sleep(0.05)  # a slow network: the next parts start meanwhile
            if kw["PartNumber"] == fail_part:
                raise RuntimeError("the part failed")
            return await real(**kw)
        finally:
            seen["now"] -= 1

    client.upload_part = upload_part
    return seen


async def test_parts_go_up_several_at_once_in_order(s3):
    data = os.urandom(5 * PART_BYTES + 1234)
    seen = _spy_parts(await s3._s3())
    assert await s3.put("org/parts", _chunks(data, 1024 * 1024)) == len(data)
    assert 2 <= seen["most"] <= PART_CONCURRENCY and sorted(seen["numbers"]) == [1, 2, 3, 4, 5, 6]
    assert hashlib.sha256(await _read(s3, "org/parts")).digest() == hashlib.sha256(data).digest()


async def test_a_failed_part_fails_the_upload_and_leaves_nothing(s3):
    client = await s3._s3()
    _spy_parts(client, fail_part=2)
    with pytest.raises(RuntimeError, match="the part failed"):
        await s3.put("org/failed", _chunks(os.urandom(4 * PART_BYTES), 1024 * 1024))
    assert (await client.list_objects_v2(Bucket=s3.bucket)).get("KeyCount", 0) == 0
    assert not (await client.list_multipart_uploads(Bucket=s3.bucket)).get("Uploads")


async def test_small_object_and_delete(s3):
    assert await s3.put("org/small", _chunks(b"hello")) == 5
    assert await _read(s3, "org/small") == b"hello"
    await s3.delete("org/small")
    with pytest.raises(Exception, match="NoSuchKey"):
        await _read(s3, "org/small")


async def test_a_failed_stream_leaves_no_object(s3):
    async def broken():
        yield os.urandom(PART_BYTES)
        yield os.urandom(1024)
        raise RuntimeError("client went away")

    with pytest.raises(RuntimeError):
        await s3.put("org/broken", broken())
    s3_client = await s3._s3()
    listed = await s3_client.list_objects_v2(Bucket=s3.bucket)
    assert listed.get("KeyCount", 0) == 0
    uploads = await s3_client.list_multipart_uploads(Bucket=s3.bucket)
    assert not uploads.get("Uploads")  # aborted, nothing left half-written


async def test_documents_upload_into_s3_hashed_and_stored_once(s3, env):
    """crm's upload with the S3 store: hashed while streaming, stored once, streamed back."""
    from chassis.db import Database, create_engine
    from chassis.settings import ServiceSettings
    from services.crm.handlers import documents as handlers
    from services.crm.handlers import uploads

    db = Database(create_engine(ServiceSettings().app_database_url("crm"), pool_size=1), "crm")
    try:
        deps = handlers.DocumentDeps(db=db, objects=s3, reads=None, max_document_bytes=64 * 1024 * 1024,
                                     link_key=b"k", max_link_seconds=3600, public_url="")
        org = uuid.uuid4()
        data = b"%PDF-1.7\n" + os.urandom(PART_BYTES + 1024)
        doc, version, dedup = await uploads.upload(deps, org, uploads.UploadHeader(filename="a.pdf", fields={}),
                                                    _chunks(data))
        assert not dedup and doc["sha256"] == hashlib.sha256(data).hexdigest() and doc["mime_type"] == "application/pdf"
        assert b"".join([c async for c in handlers.stream(deps, version)]) == data
        again = await uploads.upload(deps, org, uploads.UploadHeader(filename="b.pdf", fields={}), _chunks(data))
        assert again[2] and again[0]["id"] != doc["id"]
        listed = await (await s3._s3()).list_objects_v2(Bucket=s3.bucket)
        assert listed["KeyCount"] == 1  # the second copy was removed again
    finally:
        await db.dispose()
