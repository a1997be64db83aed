"""Uploads: a document (or a new version of one) streamed in chunks, hashed (SHA-256) while it
streams, its type detected from its first bytes, stored once per organization by hash."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections import deque
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from givance.events.v1 import crm_events_pb2

from chassis.errors import (
    InvalidArgument,
    Violations,
)
from chassis.resource import check_request_id, current, found, parse_optional_id
from services.crm.domain import documents as rules
from services.crm.store import documents as store

if TYPE_CHECKING:  # the interface only: the store itself is injected
    pass
from services.crm.handlers.documents import (
    DocumentDeps,
    audited,
    check_access,
    check_links,
    current_caller,
    document_for,
)


@dataclass
class UploadHeader:
    document_id: str = ""
    filename: str = ""
    request_id: str = ""
    etag: str = ""
    fields: dict | None = None  # the new document's raw fields


class _Digest:
    """What an upload learns while its bytes stream through: SHA-256, size, the first bytes
    (to detect the type); a chunk over 1 MiB or a total over the limit ends it. The hash runs on
    a thread of its own, chunk after chunk in order, beside the receiving and the storing."""

    def __init__(self, chunks: AsyncIterator[bytes], limit: int):
        self.chunks, self.limit = chunks, limit
        self.sha = hashlib.sha256()
        self.size = 0
        self.head = b""
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="sha256")
        self._hashing: deque[asyncio.Future] = deque()

    async def __aiter__(self):
        loop = asyncio.get_running_loop()
        async for chunk in self.chunks:
            if len(chunk) > rules.MAX_CHUNK:
                raise InvalidArgument.field("chunk", f"must be at most {rules.MAX_CHUNK} bytes")
            self.size += len(chunk)
            if self.size > self.limit:
                raise InvalidArgument.field("chunk", f"the document is over the limit of {self.limit} bytes")
            if len(self.head) < rules.SNIFF_BYTES:
                self.head += chunk[: rules.SNIFF_BYTES - len(self.head)]
            self._hashing.append(loop.run_in_executor(self._pool, self.sha.update, chunk))
            while len(self._hashing) > HASH_AHEAD:
                await self._hashing.popleft()
            yield chunk

    async def hexdigest(self) -> str:
        while self._hashing:
            await self._hashing.popleft()
        return self.sha.hexdigest()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


HASH_AHEAD = 8  # chunks queued for hashing at most


async def upload(deps: DocumentDeps, org: uuid.UUID, header: UploadHeader,
                 chunks: AsyncIterator[bytes]) -> tuple[dict, dict, bool]:
    """A new document (or a new version of one): (document, version, deduplicated)."""
    v = Violations()
    filename = rules.filename(header.filename, "header.filename", v)
    check_request_id(header.request_id, v, "header.request_id")
    doc_id = parse_optional_id(header.document_id, "header.document_id", v)
    clean = None
    if doc_id is None:
        raw = dict(header.fields or {})
        raw["name"] = raw.get("name") or filename
        clean = rules.normalize_document(raw, "header.document", v)
    v.raise_if_any()
    caller = current_caller()
    if doc_id is not None or header.request_id:
        async with deps.db.unit_of_work(org) as uow:  # refuse early, before any byte is stored
            if doc_id is not None:
                await document_for(uow, org, str(doc_id), rules.EDIT, field="header.document_id", caller=caller)
            elif earlier := await store.document_by_request_id(uow.conn, org, header.request_id):
                doc = found(await store.get_document(uow.conn, org, earlier), "document", str(earlier))
                return doc, await store.version(uow.conn, org, earlier, doc["current_version"]), True
    key = f"{org}/{uuid.uuid4().hex}"
    digest = _Digest(chunks, deps.max_document_bytes)
    try:
        await deps.objects.put(key, digest.__aiter__())
        sha256, mime = await digest.hexdigest(), rules.detect_mime(digest.head)
    finally:
        digest.close()
    keep_object = False
    try:
        async with deps.db.unit_of_work(org) as uow:
            blob = await store.insert_blob(uow.conn, org, uuid.uuid4(), sha256, digest.size, mime, key)
            keep_object = blob is not None
            if blob is None:  # the organization holds these bytes already
                blob = await store.blob_by_hash(uow.conn, org, sha256)
            dedup = not keep_object
            if doc_id is None:
                did = uuid.uuid4()
                await check_links(uow, org, clean, "header.document")
                if not await store.insert_document(uow.conn, org, did, clean, caller.user_id,
                                                   header.request_id or None):
                    keep_object = False  # a concurrent retry with this request id won
                    raise _Retry()
                await store.add_version(uow.conn, org, did, 1, blob, filename, caller.user_id)
                number = 1
                uow.audit("crm.document.upload", "document", str(did),
                          after={**audited(clean), "filename": filename, "sha256": sha256, "size": digest.size})
                event = "crm.document.uploaded"
            else:
                did = doc_id
                doc = current(await store.get_document(uow.conn, org, did, for_update=True), "document",
                              str(did), header.etag, "header.etag")
                await check_access(uow.conn, org, doc, caller, rules.EDIT, str(did))
                number = await store.max_version(uow.conn, org, did) + 1
                await store.add_version(uow.conn, org, did, number, blob, filename, caller.user_id)
                uow.audit("crm.document.add_version", "document", str(did),
                          after={"version": number, "filename": filename, "sha256": sha256, "size": digest.size})
                event = "crm.document.version_added"
            uow.publish(event, crm_events_pb2.DocumentChangedEvent(
                document_id=str(did), version=number, sha256=sha256, size_bytes=digest.size, mime_type=mime,
                client_id=str((clean or doc)["client_id"] or "")), aggregate_type="document", aggregate_id=str(did))
            doc = await store.get_document(uow.conn, org, did)
            version = await store.version(uow.conn, org, did, number)
    except _Retry:
        async with deps.db.unit_of_work(org) as uow:
            earlier = await store.document_by_request_id(uow.conn, org, header.request_id)
            doc = found(await store.get_document(uow.conn, org, earlier), "document", str(earlier))
            version = await store.version(uow.conn, org, earlier, doc["current_version"])
            dedup = True
    finally:
        if not keep_object:
            await deps.objects.delete(key)
    return doc, version, dedup


class _Retry(Exception):
    """A concurrent create with the same request id committed first."""
