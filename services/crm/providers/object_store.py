"""The object store documents' bytes live in: one small interface, a local directory (the
development default, `make run`) and S3-compatible storage through aiobotocore (deployments).

Objects are written once under a key and never changed; the caller streams them in and out in
chunks, so no document is ever held whole in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

DOWNLOAD_CHUNK = 1024 * 1024
# S3 multipart parts: at least 5 MiB each but the last; up to PART_CONCURRENCY of them on their
# way at once (so at most (PART_CONCURRENCY + 1) * PART_BYTES of an upload in memory).
PART_BYTES = 8 * 1024 * 1024
PART_CONCURRENCY = 4


class ObjectStore(Protocol):
    name: str

    async def put(self, key: str, chunks: AsyncIterator[bytes]) -> int:
        """Stream `chunks` into a new object under `key`; the bytes written. If `chunks` raises,
        nothing is left under `key` and the error propagates."""

    def get(self, key: str, chunk_size: int = DOWNLOAD_CHUNK) -> AsyncIterator[bytes]:
        """The object's bytes, in chunks of at most `chunk_size`."""

    async def delete(self, key: str) -> None:
        """Remove the object (no error when it is not there)."""

    async def close(self) -> None: ...


class LocalObjectStore:
    """A directory: each object a file, written to a temporary name, flushed to disk (fsync) and
    renamed when complete, so an object that exists is whole and survives a crash."""

    name = "local"

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise ValueError(f"object key {key!r} leaves the store")
        return path

    async def put(self, key: str, chunks: AsyncIterator[bytes]) -> int:
        """A writer thread takes the chunks from a short queue, so the disk writes chunk N while
        the caller receives (and hashes) chunk N+1."""
        path = self._path(key)
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
        pending: queue.Queue = queue.Queue(maxsize=WRITE_BEHIND)
        abort = threading.Event()
        writer = asyncio.get_running_loop().run_in_executor(None, _write_all, tmp, pending, abort)
        size = 0
        try:
            async for chunk in chunks:
                if writer.done():
                    break  # it failed: its error is raised below
                size += len(chunk)
                try:
                    pending.put_nowait(chunk)
                except queue.Full:
                    await asyncio.to_thread(pending.put, chunk)
            await asyncio.to_thread(pending.put, _DONE)
            await writer
            await asyncio.to_thread(os.replace, tmp, path)
        except BaseException:
            abort.set()
            with contextlib.suppress(BaseException):
                await writer
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return size

    async def get(self, key: str, chunk_size: int = DOWNLOAD_CHUNK) -> AsyncIterator[bytes]:
        f = await asyncio.to_thread(open, self._path(key), "rb")
        try:
            while chunk := await asyncio.to_thread(f.read, chunk_size):
                yield chunk
        finally:
            f.close()

    async def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(os.unlink, self._path(key))

    async def close(self) -> None:
        return None


_DONE = object()
WRITE_BEHIND = 8  # chunks queued for the writer thread at most


def _write_all(path: Path, pending: queue.Queue, abort: threading.Event) -> None:
    """The writer thread: chunks until _DONE (then flushed to disk), or until told to abort."""
    with open(path, "wb") as f:
        while not abort.is_set():
            try:
                item = pending.get(timeout=0.2)
            except queue.Empty:
                continue
            if item is _DONE:
                f.flush()
                os.fsync(f.fileno())
                return
            f.write(item)


class S3ObjectStore:
    """Any S3-compatible storage (AWS S3, MinIO, Ceph, moto's server) through aiobotocore:
    multipart uploads of PART_BYTES parts (one PutObject for a small object), streamed GETs."""

    name = "s3"

    def __init__(self, *, bucket: str, endpoint_url: str | None, region: str, access_key_id: str | None,
                 secret_access_key: str | None):
        self.bucket = bucket
        self._config = {"endpoint_url": endpoint_url, "region_name": region, "aws_access_key_id": access_key_id,
                        "aws_secret_access_key": secret_access_key}
        self._stack: contextlib.AsyncExitStack | None = None
        self._client = None
        self._lock = asyncio.Lock()

    async def _s3(self):
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    from aiobotocore.session import get_session

                    stack = contextlib.AsyncExitStack()
                    self._client = await stack.enter_async_context(get_session().create_client("s3", **self._config))
                    self._stack = stack
        return self._client

    async def ensure_bucket(self) -> None:
        """Create the bucket when it is not there (development and tests; deployments make it)."""
        s3 = await self._s3()
        try:
            await s3.head_bucket(Bucket=self.bucket)
        except Exception:  # noqa: BLE001 - botocore's ClientError 404 (or 403 on some servers)
            await s3.create_bucket(Bucket=self.bucket)

    async def put(self, key: str, chunks: AsyncIterator[bytes]) -> int:
        """Parts of PART_BYTES go up while the next ones stream in, PART_CONCURRENCY at a time;
        each part is one join of its chunks (no growing buffer copied again)."""
        s3 = await self._s3()
        pending: list[bytes] = []
        pending_size = size = number = 0
        upload_id: str | None = None
        etags: dict[int, str] = {}
        sending: set[asyncio.Task] = set()

        async def send(number: int, body: bytes) -> None:
            part = await s3.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body)
            etags[number] = part["ETag"]

        async def wait_for_room(room: int) -> None:
            nonlocal sending
            while len(sending) > room:
                done, sending = await asyncio.wait(sending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()  # a failed part fails the upload

        try:
            async for chunk in chunks:
                pending.append(chunk)
                pending_size += len(chunk)
                size += len(chunk)
                if pending_size >= PART_BYTES:
                    if upload_id is None:
                        upload_id = (await s3.create_multipart_upload(Bucket=self.bucket, Key=key))["UploadId"]
                    await wait_for_room(PART_CONCURRENCY - 1)
                    number += 1
                    sending.add(asyncio.create_task(send(number, b"".join(pending))))
                    pending.clear()
                    pending_size = 0
            if upload_id is None:
                await s3.put_object(Bucket=self.bucket, Key=key, Body=b"".join(pending))
                return size
            if pending:
                await wait_for_room(PART_CONCURRENCY - 1)
                number += 1
                sending.add(asyncio.create_task(send(number, b"".join(pending))))
            await wait_for_room(0)
            parts = [{"ETag": etags[n], "PartNumber": n} for n in sorted(etags)]
            await s3.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                               MultipartUpload={"Parts": parts})
            return size
        except BaseException:
            for task in sending:
                task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.gather(*sending, return_exceptions=True)
            if upload_id is not None:
                with contextlib.suppress(Exception):
                    await s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise

    async def get(self, key: str, chunk_size: int = DOWNLOAD_CHUNK) -> AsyncIterator[bytes]:
        s3 = await self._s3()
        response = await s3.get_object(Bucket=self.bucket, Key=key)
        async with response["Body"] as body:
            while chunk := await body.read(chunk_size):
                yield chunk

    async def delete(self, key: str) -> None:
        s3 = await self._s3()
        await s3.delete_object(Bucket=self.bucket, Key=key)

    async def close(self) -> None:
        if self._stack is not None:
            await self._stack.aclose()
            self._stack, self._client = None, None
