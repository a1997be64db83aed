"""DocumentService: proto in, handler call, proto out (folders, documents, versions, access,
signatures)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from givance.crm.v1 import document_pb2, document_service_pb2_grpc
from givance.crm.v1 import document_service_pb2 as pb
from google.protobuf import struct_pb2
from google.protobuf.json_format import MessageToDict

from chassis import context, streams
from chassis.convert import from_timestamp, timestamp
from chassis.errors import InvalidArgument
from chassis.resource import etag
from services.crm.handlers import document_access, folders, signatures, uploads
from services.crm.handlers import documents as handlers
from services.crm.handlers.documents import DocumentDeps
from services.crm.handlers.uploads import UploadHeader

_VIS_IN = {document_pb2.DOCUMENT_VISIBILITY_UNSPECIFIED: None, document_pb2.DOCUMENT_VISIBILITY_PRIVATE: "private",
           document_pb2.DOCUMENT_VISIBILITY_TEAM: "team", document_pb2.DOCUMENT_VISIBILITY_CLIENT: "client"}
_VIS_OUT = {v: k for k, v in _VIS_IN.items() if v}
_SIG_OUT = {"none": document_pb2.SIGNATURE_STATUS_NONE, "pending": document_pb2.SIGNATURE_STATUS_PENDING,
            "signed": document_pb2.SIGNATURE_STATUS_SIGNED}
_PERM_IN = {document_pb2.DOCUMENT_PERMISSION_TYPE_VIEW: "view", document_pb2.DOCUMENT_PERMISSION_TYPE_EDIT: "edit",
            document_pb2.DOCUMENT_PERMISSION_TYPE_DELETE: "delete",
            document_pb2.DOCUMENT_PERMISSION_TYPE_SHARE: "share"}
_PERM_OUT = {v: k for k, v in _PERM_IN.items()}


def _org():
    return context.current().tenant_id


def _struct(value: dict | None) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(value or {})
    return s


def folder_out(r: dict) -> document_pb2.Folder:
    return document_pb2.Folder(id=str(r["id"]), organization_id=str(r["organization_id"]),
                               parent_id=str(r["parent_id"] or ""), name=r["name"], path=r["path"] or r["name"],
                               create_time=timestamp(r["created_at"]), update_time=timestamp(r["updated_at"]),
                               etag=etag(r["version"]))


def document_in(d: document_pb2.Document, prefix: str) -> dict[str, Any]:
    problems = {}
    if d.visibility not in _VIS_IN:
        problems[f"{prefix}.visibility"] = f"unknown visibility {d.visibility}"
    return {"name": d.name, "folder_id": d.folder_id, "client_id": d.client_id, "document_type": d.document_type,
            "tags": list(d.tags), "visibility": _VIS_IN.get(d.visibility), "description": d.description,
            "metadata": MessageToDict(d.metadata), "problems": problems}


def document_out(r: dict) -> document_pb2.Document:
    return document_pb2.Document(
        id=str(r["id"]), organization_id=str(r["organization_id"]), folder_id=str(r["folder_id"] or ""),
        client_id=str(r["client_id"] or ""), name=r["name"], document_type=r["document_type"] or "",
        tags=list(r["tags"] or []), visibility=_VIS_OUT[r["visibility"]], description=r["description"] or "",
        metadata=_struct(r["metadata"]), current_version=r["current_version"], filename=r["filename"],
        size_bytes=r["size_bytes"], mime_type=r["mime_type"], sha256=r["sha256"],
        signature_status=_SIG_OUT[r["signature_status"]], owner_id=str(r["owner_id"] or ""),
        create_time=timestamp(r["created_at"]), update_time=timestamp(r["updated_at"]), etag=etag(r["version"]))


def version_out(r: dict) -> document_pb2.DocumentVersion:
    return document_pb2.DocumentVersion(
        document_id=str(r["document_id"]), number=r["number"], filename=r["filename"], size_bytes=r["size_bytes"],
        mime_type=r["mime_type"], sha256=r["sha256"], is_current=r["is_current"],
        restored_from=r["restored_from"] or 0, uploader_id=str(r["uploaded_by"] or ""),
        signature_status=_SIG_OUT[r["signature_status"]], create_time=timestamp(r["created_at"]))


def permission_out(r: dict) -> document_pb2.DocumentPermission:
    return document_pb2.DocumentPermission(
        id=str(r["id"]), document_id=str(r["document_id"]), user_id=str(r["user_id"] or ""), role=r["role"] or "",
        client_id=str(r["client_id"] or ""), permission_type=_PERM_OUT[r["permission_type"]],
        expire_time=timestamp(r["expires_at"]), granter_id=str(r["granted_by"] or ""),
        create_time=timestamp(r["created_at"]))


def signature_out(r: dict) -> document_pb2.DocumentSignature:
    return document_pb2.DocumentSignature(
        id=str(r["id"]), document_id=str(r["document_id"]), version_number=r["version_number"],
        contact_id=str(r["contact_id"] or ""), user_id=str(r["user_id"] or ""), signer_name=r["signer_name"],
        signer_email=r["signer_email"] or "", status=_SIG_OUT[r["status"]], sign_time=timestamp(r["signed_at"]),
        intent=r["intent"] or "", ip_address=r["ip_address"] or "", user_agent=r["user_agent"] or "",
        document_sha256=r["document_sha256"] or "", sign_url=r.get("sign_url", ""))


class DocumentServicer(document_service_pb2_grpc.DocumentServiceServicer):
    def __init__(self, deps: DocumentDeps, *, stream_idle_seconds: float = 60.0):
        self.deps, self.db = deps, deps.db
        self.idle = stream_idle_seconds

    # -- folders

    async def CreateFolder(self, request: pb.CreateFolderRequest, ctx) -> pb.CreateFolderResponse:
        row = await folders.create_folder(self.db, _org(), request.folder.name, request.folder.parent_id,
                                           request.request_id)
        return pb.CreateFolderResponse(folder=folder_out(row))

    async def GetFolder(self, request: pb.GetFolderRequest, ctx) -> pb.GetFolderResponse:
        return pb.GetFolderResponse(folder=folder_out(await folders.get_folder(self.db, _org(), request.id)))

    async def ListFolders(self, request: pb.ListFoldersRequest, ctx) -> pb.ListFoldersResponse:
        rows, token = await folders.list_folders(self.db, _org(), request.parent_id, request.page_size,
                                                  request.page_token)
        return pb.ListFoldersResponse(folders=[folder_out(r) for r in rows], next_page_token=token)

    async def UpdateFolder(self, request: pb.UpdateFolderRequest, ctx) -> pb.UpdateFolderResponse:
        f = request.folder
        row = await folders.update_folder(self.db, _org(), f.id, f.etag, f.name, f.parent_id,
                                           list(request.update_mask.paths))
        return pb.UpdateFolderResponse(folder=folder_out(row))

    async def DeleteFolder(self, request: pb.DeleteFolderRequest, ctx) -> pb.DeleteFolderResponse:
        await folders.delete_folder(self.db, _org(), request.id, request.etag)
        return pb.DeleteFolderResponse()

    # -- documents

    async def UploadDocument(self, requests, ctx) -> pb.UploadDocumentResponse:
        messages = streams.idle_limited(requests, self.idle).__aiter__()
        try:
            first = await messages.__anext__()
        except StopAsyncIteration:
            raise InvalidArgument.field("header", "the stream is empty: send the header first") from None
        if first.WhichOneof("part") != "header":
            raise InvalidArgument.field("header", "the first message must be the header")
        h = first.header
        header = UploadHeader(document_id=h.document_id, filename=h.filename, request_id=h.request_id, etag=h.etag,
                              fields=None if h.document_id else document_in(h.document, "header.document"))

        async def chunks() -> AsyncIterator[bytes]:
            async for m in messages:
                if m.WhichOneof("part") != "chunk":
                    raise InvalidArgument.field("header", "only the first message may be the header")
                yield m.chunk

        doc, version, dedup = await uploads.upload(self.deps, _org(), header, chunks())
        return pb.UploadDocumentResponse(document=document_out(doc), version=version_out(version),
                                         deduplicated=dedup)

    async def GetDocument(self, request: pb.GetDocumentRequest, ctx) -> pb.GetDocumentResponse:
        return pb.GetDocumentResponse(document=document_out(await handlers.get_document(self.deps, _org(),
                                                                                        request.id)))

    async def ListDocuments(self, request: pb.ListDocumentsRequest, ctx) -> pb.ListDocumentsResponse:
        rows, token = await handlers.list_documents(
            self.deps, _org(), folder_id=request.folder_id, client_id=request.client_id, tag=request.tag,
            document_type=request.document_type, metadata=MessageToDict(request.metadata),
            page_size=request.page_size, page_token=request.page_token)
        return pb.ListDocumentsResponse(documents=[document_out(r) for r in rows], next_page_token=token)

    async def UpdateDocument(self, request: pb.UpdateDocumentRequest, ctx) -> pb.UpdateDocumentResponse:
        d = request.document
        row = await handlers.update_document(self.deps, _org(), d.id, d.etag, document_in(d, "document"),
                                             list(request.update_mask.paths))
        return pb.UpdateDocumentResponse(document=document_out(row))

    async def DeleteDocument(self, request: pb.DeleteDocumentRequest, ctx) -> pb.DeleteDocumentResponse:
        await handlers.delete_document(self.deps, _org(), request.id, request.etag)
        return pb.DeleteDocumentResponse()

    async def DownloadDocument(self, request: pb.DownloadDocumentRequest, ctx):
        version = await handlers.open_version(self.deps, _org(), request.id, request.version)
        yield pb.DownloadDocumentResponse(version=version_out(version))
        async for chunk in handlers.stream(self.deps, version):
            yield pb.DownloadDocumentResponse(chunk=chunk)

    async def ListDocumentVersions(self, request: pb.ListDocumentVersionsRequest,
                                   ctx) -> pb.ListDocumentVersionsResponse:
        rows = await handlers.list_versions(self.deps, _org(), request.id)
        return pb.ListDocumentVersionsResponse(versions=[version_out(r) for r in rows])

    async def RestoreDocumentVersion(self, request: pb.RestoreDocumentVersionRequest,
                                     ctx) -> pb.RestoreDocumentVersionResponse:
        doc, version = await handlers.restore_version(self.deps, _org(), request.id, request.number, request.etag)
        return pb.RestoreDocumentVersionResponse(document=document_out(doc), version=version_out(version))

    # -- access

    async def GrantDocumentPermission(self, request: pb.GrantDocumentPermissionRequest,
                                      ctx) -> pb.GrantDocumentPermissionResponse:
        p = request.permission
        row = await document_access.grant(self.deps, _org(), p.document_id, user_id=p.user_id, role=p.role,
                                   client_id=p.client_id, permission_type=_PERM_IN.get(p.permission_type),
                                   expires_at=from_timestamp(p.expire_time) if p.HasField("expire_time") else None)
        return pb.GrantDocumentPermissionResponse(permission=permission_out(row))

    async def ListDocumentPermissions(self, request: pb.ListDocumentPermissionsRequest,
                                      ctx) -> pb.ListDocumentPermissionsResponse:
        rows = await document_access.list_grants(self.deps, _org(), request.document_id)
        return pb.ListDocumentPermissionsResponse(permissions=[permission_out(r) for r in rows])

    async def RevokeDocumentPermission(self, request: pb.RevokeDocumentPermissionRequest,
                                       ctx) -> pb.RevokeDocumentPermissionResponse:
        await document_access.revoke(self.deps, _org(), request.document_id, request.id)
        return pb.RevokeDocumentPermissionResponse()

    async def CreateDocumentLink(self, request: pb.CreateDocumentLinkRequest, ctx) -> pb.CreateDocumentLinkResponse:
        url, expires = await document_access.create_link(self.deps, _org(), request.document_id, request.client_id,
                                                  request.ttl_seconds)
        return pb.CreateDocumentLinkResponse(url=url, expire_time=timestamp(expires))

    # -- signatures

    async def RequestSignatures(self, request: pb.RequestSignaturesRequest, ctx) -> pb.RequestSignaturesResponse:
        sigs, doc = await signatures.request_signatures(
            self.deps, _org(), request.document_id, [(s.contact_id, s.user_id) for s in request.signers],
            request.ttl_seconds)
        return pb.RequestSignaturesResponse(signatures=[signature_out(s) for s in sigs], document=document_out(doc))

    async def SignDocument(self, request: pb.SignDocumentRequest, ctx) -> pb.SignDocumentResponse:
        sig, doc = await signatures.sign(self.deps, _org(), request.document_id, request.intent)
        return pb.SignDocumentResponse(signature=signature_out(sig), document=document_out(doc))

    async def ListDocumentSignatures(self, request: pb.ListDocumentSignaturesRequest,
                                     ctx) -> pb.ListDocumentSignaturesResponse:
        rows = await signatures.list_signatures(self.deps, _org(), request.document_id)
        return pb.ListDocumentSignaturesResponse(signatures=[signature_out(r) for r in rows])
