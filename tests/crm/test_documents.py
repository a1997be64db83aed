"""Folders and documents on the real servers: uploads of several MB in chunks (hashed while
streaming, stored once per organization), downloads, versions, the folder tree, bad input."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import grpc
import pytest
from givance.crm.v1 import document_pb2
from givance.crm.v1 import document_service_pb2 as pb
from google.protobuf import field_mask_pb2, struct_pb2

from chassis.db import Database, create_engine
from chassis.errors import InvalidArgument
from chassis.settings import ServiceSettings
from services.crm.handlers import documents as handlers
from services.crm.handlers import uploads
from services.crm.providers.object_store import LocalObjectStore
from tests.helpers import error_reason, fails, invalid

CHUNK = 256 * 1024
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 64


def _requests(data: bytes, header: pb.DocumentUploadHeader, chunk: int = CHUNK):
    async def gen():
        yield pb.UploadDocumentRequest(header=header)
        for i in range(0, len(data), chunk):
            yield pb.UploadDocumentRequest(chunk=data[i:i + chunk])
    return gen()


async def upload(stubs, tenant, data: bytes, filename: str = "letter.pdf", **doc) -> pb.UploadDocumentResponse:
    header = pb.DocumentUploadHeader(filename=filename, document=document_pb2.Document(**doc))
    return await stubs.documents.UploadDocument(_requests(data, header), metadata=tenant.md)


async def new_version(stubs, tenant, doc_id: str, data: bytes, filename: str = "v2.pdf"):
    header = pb.DocumentUploadHeader(document_id=doc_id, filename=filename)
    return await stubs.documents.UploadDocument(_requests(data, header), metadata=tenant.md)


async def download(stubs, tenant, doc_id: str, version: int = 0) -> tuple[document_pb2.DocumentVersion, bytes]:
    parts, first = [], None
    async for m in stubs.documents.DownloadDocument(pb.DownloadDocumentRequest(id=doc_id, version=version),
                                                    metadata=tenant.md):
        if m.WhichOneof("part") == "version":
            first = m.version
        else:
            parts.append(m.chunk)
    return first, b"".join(parts)


def _store_files() -> list[Path]:
    return [p for p in Path(os.environ["CRM_OBJECT_STORE_DIR"]).rglob("*") if p.is_file()]


async def test_several_megabytes_in_chunks_hashed_typed_and_downloaded(stubs, tenant):
    data = PDF + os.urandom(5 * 1024 * 1024 + 123)
    resp = await upload(stubs, tenant, data, document_type="engagement_letter", tags=["2026", "engagement"],
                        description="Engagement letter", metadata=struct_pb2.Struct(
                            fields={"year": struct_pb2.Value(number_value=2026)}))
    d = resp.document
    assert d.sha256 == hashlib.sha256(data).hexdigest() and d.size_bytes == len(data)
    assert d.mime_type == "application/pdf" and d.filename == "letter.pdf" and d.name == "letter.pdf"
    assert d.current_version == 1 and d.signature_status == document_pb2.SIGNATURE_STATUS_NONE
    assert not resp.deduplicated and d.owner_id == tenant.user_id
    version, got = await download(stubs, tenant, d.id)
    assert got == data and version.sha256 == d.sha256 and version.is_current
    # a .pdf name on PNG bytes is a PNG: the type comes from the content
    png = await upload(stubs, tenant, PNG + os.urandom(100), filename="not-really.pdf")
    assert png.document.mime_type == "image/png"
    text = await upload(stubs, tenant, "Grüße, plain text\n".encode(), filename="notes.bin")
    assert text.document.mime_type == "text/plain"


async def test_the_same_bytes_are_stored_once_per_organization(stubs, tenant, other_tenant, admin_db):
    data = os.urandom(3 * 1024 * 1024)
    sha = hashlib.sha256(data).hexdigest()
    a = await upload(stubs, tenant, data, filename="a.bin")
    files = len(_store_files())
    b = await upload(stubs, tenant, data, filename="b.bin")
    assert b.deduplicated and not a.deduplicated and a.document.id != b.document.id
    assert len(_store_files()) == files  # nothing more on disk
    assert await admin_db.fetchval("SELECT count(*) FROM crm.document_blobs WHERE organization_id = $1::uuid "
                                   "AND sha256 = $2", tenant.org_id, sha) == 1
    # another organization stores its own copy (dedup never crosses tenants)
    c = await upload(stubs, other_tenant, data, filename="c.bin")
    assert not c.deduplicated and len(_store_files()) == files + 1


async def test_versions_keep_history_one_current_and_restore(stubs, tenant, admin_db):
    v1 = PDF + b"first draft"
    v2 = PDF + b"second draft"
    d = (await upload(stubs, tenant, v1)).document
    r2 = await new_version(stubs, tenant, d.id, v2)
    assert r2.document.current_version == 2 and r2.version.number == 2 and r2.document.sha256 == r2.version.sha256
    _, got = await download(stubs, tenant, d.id)
    assert got == v2
    _, old = await download(stubs, tenant, d.id, version=1)
    assert old == v1
    restored = await stubs.documents.RestoreDocumentVersion(pb.RestoreDocumentVersionRequest(id=d.id, number=1),
                                                            metadata=tenant.md)
    assert restored.version.number == 3 and restored.version.restored_from == 1
    assert restored.document.sha256 == hashlib.sha256(v1).hexdigest()
    versions = (await stubs.documents.ListDocumentVersions(pb.ListDocumentVersionsRequest(id=d.id),
                                                           metadata=tenant.md)).versions
    assert [v.number for v in versions] == [3, 2, 1] and [v.is_current for v in versions] == [True, False, False]
    # the database allows one current version only
    with pytest.raises(Exception, match="document_versions_one_current"):
        await admin_db.execute("UPDATE crm.document_versions SET is_current = true WHERE document_id = $1::uuid",
                               d.id)
    # a stale etag on a new version is ABORTED
    header = pb.DocumentUploadHeader(document_id=d.id, filename="x.pdf", etag=d.etag)
    await fails(stubs.documents.UploadDocument(_requests(b"x", header), metadata=tenant.md), grpc.StatusCode.ABORTED)


async def test_update_list_filters_and_metadata(stubs, tenant):
    tag = f"t-{uuid.uuid4().hex[:6]}"
    a = (await upload(stubs, tenant, os.urandom(10), tags=[tag], document_type="tax_return",
                      metadata=struct_pb2.Struct(fields={"year": struct_pb2.Value(string_value="2025")}))).document
    b = (await upload(stubs, tenant, os.urandom(10), tags=[tag], document_type="invoice")).document
    listed = (await stubs.documents.ListDocuments(pb.ListDocumentsRequest(tag=tag), metadata=tenant.md)).documents
    assert [x.id for x in listed] == [b.id, a.id]
    meta = struct_pb2.Struct(fields={"year": struct_pb2.Value(string_value="2025")})
    listed = (await stubs.documents.ListDocuments(pb.ListDocumentsRequest(tag=tag, metadata=meta),
                                                  metadata=tenant.md)).documents
    assert [x.id for x in listed] == [a.id]
    u = (await stubs.documents.UpdateDocument(pb.UpdateDocumentRequest(
        document=document_pb2.Document(id=b.id, etag=b.etag, description="Invoice 7", name="Invoice 7.pdf"),
        update_mask=field_mask_pb2.FieldMask(paths=["description", "name"])), metadata=tenant.md)).document
    assert u.description == "Invoice 7" and u.name == "Invoice 7.pdf" and u.document_type == "invoice"
    await fails(stubs.documents.UpdateDocument(pb.UpdateDocumentRequest(
        document=document_pb2.Document(id=b.id, etag=b.etag, description="stale"),
        update_mask=field_mask_pb2.FieldMask(paths=["description"])), metadata=tenant.md), grpc.StatusCode.ABORTED)
    await stubs.documents.DeleteDocument(pb.DeleteDocumentRequest(id=a.id), metadata=tenant.md)
    await fails(stubs.documents.GetDocument(pb.GetDocumentRequest(id=a.id), metadata=tenant.md),
                grpc.StatusCode.NOT_FOUND)


async def test_bad_uploads_are_invalid_argument_naming_the_field(stubs, tenant):
    async def chunk_first():
        yield pb.UploadDocumentRequest(chunk=b"abc")
    await invalid(stubs.documents.UploadDocument(chunk_first(), metadata=tenant.md), "header")
    await invalid(upload(stubs, tenant, b"abc", filename=""), "header.filename")
    await invalid(upload(stubs, tenant, b"abc", visibility=document_pb2.DOCUMENT_VISIBILITY_CLIENT),
                  "header.document.visibility")
    await invalid(upload(stubs, tenant, b"abc", folder_id=str(uuid.uuid4())), "header.document.folder_id")
    big = pb.DocumentUploadHeader(filename="big.bin")
    await invalid(stubs.documents.UploadDocument(_requests(os.urandom(1024 * 1024 + 1), big, chunk=2 * 1024 * 1024),
                                                 metadata=tenant.md), "chunk")


async def test_over_the_size_limit_nothing_is_kept(env, tmp_path):
    db = Database(create_engine(ServiceSettings().app_database_url("crm"), pool_size=1), "crm")
    try:
        deps = handlers.DocumentDeps(db=db, objects=LocalObjectStore(tmp_path), reads=None, max_document_bytes=1000,
                                     link_key=b"k", max_link_seconds=3600, public_url="")

        async def chunks():
            for _ in range(3):
                yield b"x" * 400

        with pytest.raises(InvalidArgument) as exc:
            await uploads.upload(deps, uuid.uuid4(), uploads.UploadHeader(filename="f.bin", fields={}), chunks())
        assert exc.value.violations[0][0] == "chunk"
        assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    finally:
        await db.dispose()


async def test_folder_tree_move_rename_and_no_cycles(stubs, tenant, other_tenant):
    mk = stubs.documents.CreateFolder
    clients = (await mk(pb.CreateFolderRequest(folder=document_pb2.Folder(name="Clients")), metadata=tenant.md)).folder
    acme = (await mk(pb.CreateFolderRequest(folder=document_pb2.Folder(name="Acme", parent_id=clients.id)),
                     metadata=tenant.md)).folder
    tax = (await mk(pb.CreateFolderRequest(folder=document_pb2.Folder(name="Tax 2026", parent_id=acme.id)),
                    metadata=tenant.md)).folder
    assert tax.path == "Clients/Acme/Tax 2026"
    err = await fails(mk(pb.CreateFolderRequest(folder=document_pb2.Folder(name="acme", parent_id=clients.id)),
                         metadata=tenant.md), grpc.StatusCode.ALREADY_EXISTS)
    assert error_reason(err) == "FOLDER_NAME_TAKEN"
    move = field_mask_pb2.FieldMask(paths=["parent_id"])
    for target in (tax.id, acme.id):  # under a descendant, under itself
        await invalid(stubs.documents.UpdateFolder(pb.UpdateFolderRequest(
            folder=document_pb2.Folder(id=acme.id, parent_id=target), update_mask=move), metadata=tenant.md),
            "folder.parent_id")
    moved = (await stubs.documents.UpdateFolder(pb.UpdateFolderRequest(
        folder=document_pb2.Folder(id=tax.id, parent_id=clients.id), update_mask=move), metadata=tenant.md)).folder
    assert moved.path == "Clients/Tax 2026"
    renamed = (await stubs.documents.UpdateFolder(pb.UpdateFolderRequest(
        folder=document_pb2.Folder(id=clients.id, name="All clients"),
        update_mask=field_mask_pb2.FieldMask(paths=["name"])), metadata=tenant.md)).folder
    assert renamed.parent_id == "" and renamed.name == "All clients"
    got = (await stubs.documents.GetFolder(pb.GetFolderRequest(id=tax.id), metadata=tenant.md)).folder
    assert got.path == "All clients/Tax 2026"
    listed = (await stubs.documents.ListFolders(pb.ListFoldersRequest(parent_id=clients.id),
                                                metadata=tenant.md)).folders
    assert [f.name for f in listed] == ["Acme", "Tax 2026"]
    await upload(stubs, tenant, b"in a folder", folder_id=acme.id)
    err = await fails(stubs.documents.DeleteFolder(pb.DeleteFolderRequest(id=acme.id), metadata=tenant.md),
                      grpc.StatusCode.FAILED_PRECONDITION)
    assert error_reason(err) == "FOLDER_NOT_EMPTY"
    await stubs.documents.DeleteFolder(pb.DeleteFolderRequest(id=tax.id), metadata=tenant.md)
    # another organization can neither see nor move into this tree
    await fails(stubs.documents.GetFolder(pb.GetFolderRequest(id=acme.id), metadata=other_tenant.md),
                grpc.StatusCode.NOT_FOUND)
    theirs = (await mk(pb.CreateFolderRequest(folder=document_pb2.Folder(name="Theirs")),
                       metadata=other_tenant.md)).folder
    await invalid(stubs.documents.UpdateFolder(pb.UpdateFolderRequest(
        folder=document_pb2.Folder(id=theirs.id, parent_id=acme.id), update_mask=move), metadata=other_tenant.md),
        "folder.parent_id")


async def test_upload_and_download_through_the_gateway(gateway_host, stubs, tenant):
    """The gateway's client streaming: NDJSON lines (the header, then chunks as base64); a
    server stream back as NDJSON."""
    import base64
    import json

    import httpx

    data = PDF + os.urandom(600_000)
    lines = [json.dumps({"header": {"filename": "via-gateway.pdf", "document": {"tags": ["gw"]}}})]
    lines += [json.dumps({"chunk": base64.b64encode(data[i:i + CHUNK]).decode()}) for i in range(0, len(data), CHUNK)]
    headers = {"authorization": f"Bearer {tenant.access_token}", "x-tenant-id": tenant.org_id,
               "content-type": "application/x-ndjson"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway_host.bound_port}", timeout=30) as http:
        r = await http.post("/v1/documents:upload", content="\n".join(lines).encode(), headers=headers)
        assert r.status_code == 200, r.text
        doc = r.json()["document"]
        assert doc["sha256"] == hashlib.sha256(data).hexdigest() and doc["mimeType"] == "application/pdf"
        r = await http.get(f"/v1/documents/{doc['id']}:download", headers=headers)
        assert r.status_code == 200, r.text
        frames = [json.loads(line)["result"] for line in r.text.splitlines() if line.strip()]
        assert frames[0]["version"]["number"] == 1
        assert b"".join(base64.b64decode(f["chunk"]) for f in frames[1:]) == data
        r = await http.get(f"/v1/documents/{doc['id']}", headers={k: v for k, v in headers.items()
                                                                    if k != "content-type"})
        assert r.status_code == 200 and r.json()["document"]["tags"] == ["gw"]


async def test_two_crossing_moves_at_once_cannot_make_a_cycle(stubs, tenant, admin_db):
    """A under B and B under A, sent together: the organization's folder lock lets one win; the
    other then sees the cycle and is refused."""
    import asyncio

    mk = stubs.documents.CreateFolder
    a = (await mk(pb.CreateFolderRequest(folder=document_pb2.Folder(name=f"A-{uuid.uuid4().hex[:6]}")),
                  metadata=tenant.md)).folder
    b = (await mk(pb.CreateFolderRequest(folder=document_pb2.Folder(name=f"B-{uuid.uuid4().hex[:6]}")),
                  metadata=tenant.md)).folder
    move = field_mask_pb2.FieldMask(paths=["parent_id"])
    results = await asyncio.gather(
        stubs.documents.UpdateFolder(pb.UpdateFolderRequest(folder=document_pb2.Folder(id=a.id, parent_id=b.id),
                                                            update_mask=move), metadata=tenant.md),
        stubs.documents.UpdateFolder(pb.UpdateFolderRequest(folder=document_pb2.Folder(id=b.id, parent_id=a.id),
                                                            update_mask=move), metadata=tenant.md),
        return_exceptions=True)
    errors = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(errors) == 1 and errors[0].code() == grpc.StatusCode.INVALID_ARGUMENT
    parents = {str(r["id"]): r["parent_id"] for r in await admin_db.fetch(
        "SELECT id, parent_id FROM crm.folders WHERE id = ANY($1::uuid[])", [a.id, b.id])}
    assert list(parents.values()).count(None) == 1  # one of them is still at the root
