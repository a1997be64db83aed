"""Who may do what with a document: the permissions matrix (grants to a user, a role or a
client, with expiry; visibility private, team, client), signed download links for a client
without an account, signatures, and another tenant's view of every document RPC."""

from __future__ import annotations

import hashlib
import os
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import grpc
import httpx
import pytest
from givance.crm.v1 import client_pb2, document_pb2
from givance.crm.v1 import client_service_pb2 as cpb
from givance.crm.v1 import document_service_pb2 as pb
from givance.events.v1 import audit_events_pb2
from google.protobuf import field_mask_pb2, timestamp_pb2

from chassis import events
from tests.conftest import Tenant
from tests.crm.every_rpc import EveryRpc
from tests.crm.test_documents import PDF, _requests, download, new_version, upload
from tests.crm.test_todo_assignee import _caught_up, _join
from tests.helpers import error_reason, eventually, fails, invalid

V = document_pb2


@pytest.fixture(scope="module")
async def team(stubs, admin_db):
    """An organization of this module: its owner (manages documents: role owner), two staff
    members and a viewer, all known to crm (joining costs seconds: once per module)."""
    tenant = await stubs.sign_up("Firm & Partners")
    a = await _join(stubs.members, admin_db, tenant, "staff")
    b = await _join(stubs.members, admin_db, tenant, "staff")
    viewer = await _join(stubs.members, admin_db, tenant, "viewer")
    for m in (a, b, viewer):
        await _caught_up(admin_db, tenant.org_id, m.user_id)
    return {"owner": tenant, "a": a, "b": b, "viewer": viewer}


@pytest.fixture
def http_base(crm_host) -> str:
    worker = next(w for w in crm_host.workers if type(w).__name__ == "PublicHttp")
    return f"http://127.0.0.1:{worker.bound_port}"


async def _client(stubs, tenant: Tenant, name: str = "Acme") -> client_pb2.Client:
    return (await stubs.clients.CreateClient(cpb.CreateClientRequest(client=client_pb2.Client(name=name)),
                                             metadata=tenant.md)).client


def _grant(doc_id: str, ptype, *, user_id: str = "", role: str = "", client_id: str = "", expire=None):
    return pb.GrantDocumentPermissionRequest(permission=V.DocumentPermission(
        document_id=doc_id, user_id=user_id, role=role, client_id=client_id, permission_type=ptype,
        expire_time=expire))


def _calls(stubs, doc: V.Document, who: Tenant) -> dict[str, object]:
    """One call per access kind, as `who`."""
    md = who.md
    return {
        "view": stubs.documents.GetDocument(pb.GetDocumentRequest(id=doc.id), metadata=md),
        "edit": stubs.documents.UpdateDocument(pb.UpdateDocumentRequest(
            document=V.Document(id=doc.id, description=f"by {who.user_id}"),
            update_mask=field_mask_pb2.FieldMask(paths=["description"])), metadata=md),
        "share": stubs.documents.ListDocumentPermissions(pb.ListDocumentPermissionsRequest(document_id=doc.id),
                                                         metadata=md),
    }


async def _can(stubs, doc, who) -> dict[str, str]:
    """What `who` gets for view, edit, share: "ok" or the status code's name."""
    out = {}
    for kind, call in _calls(stubs, doc, who).items():
        try:
            await call
            out[kind] = "ok"
        except grpc.aio.AioRpcError as err:
            out[kind] = err.code().name
    return out


async def test_permissions_matrix(stubs, team, admin_db):
    owner, a, b, viewer = team["owner"], team["a"], team["b"], team["viewer"]
    doc = (await upload(stubs, a, PDF + os.urandom(50))).document  # a owns it; private
    assert await _can(stubs, doc, a) == {"view": "ok", "edit": "ok", "share": "ok"}
    assert await _can(stubs, doc, owner) == {"view": "ok", "edit": "ok", "share": "ok"}  # manages documents
    assert await _can(stubs, doc, b) == {"view": "NOT_FOUND", "edit": "NOT_FOUND", "share": "NOT_FOUND"}
    assert doc.id not in {d.id for d in (await stubs.documents.ListDocuments(pb.ListDocumentsRequest(),
                                                                             metadata=b.md)).documents}
    # a VIEW grant to b
    g = (await stubs.documents.GrantDocumentPermission(_grant(doc.id, V.DOCUMENT_PERMISSION_TYPE_VIEW,
                                                              user_id=b.user_id), metadata=a.md)).permission
    assert g.granter_id == a.user_id
    assert await _can(stubs, doc, b) == {"view": "ok", "edit": "PERMISSION_DENIED", "share": "PERMISSION_DENIED"}
    assert doc.id in {d.id for d in (await stubs.documents.ListDocuments(pb.ListDocumentsRequest(),
                                                                         metadata=b.md)).documents}
    _, data = await download(stubs, b, doc.id)
    assert hashlib.sha256(data).hexdigest() == doc.sha256
    err = await fails(stubs.documents.DeleteDocument(pb.DeleteDocumentRequest(id=doc.id), metadata=b.md),
                      grpc.StatusCode.PERMISSION_DENIED)
    assert error_reason(err) == "DOCUMENT_ACCESS_DENIED"
    # an EDIT grant to the staff role: b edits (and so views); the viewer role still does not
    await stubs.documents.GrantDocumentPermission(_grant(doc.id, V.DOCUMENT_PERMISSION_TYPE_EDIT, role="staff"),
                                                  metadata=a.md)
    assert (await _can(stubs, doc, b))["edit"] == "ok"
    assert (await _can(stubs, doc, viewer))["view"] == "NOT_FOUND"
    # an expired SHARE grant gives nothing (the API refuses a past expiry; the row is as time leaves it)
    past = timestamp_pb2.Timestamp()
    past.FromDatetime(datetime.now(UTC) - timedelta(minutes=1))
    await invalid(stubs.documents.GrantDocumentPermission(_grant(doc.id, V.DOCUMENT_PERMISSION_TYPE_SHARE,
                                                                 user_id=b.user_id, expire=past), metadata=a.md),
                  "permission.expire_time")
    soon = timestamp_pb2.Timestamp()
    soon.FromDatetime(datetime.now(UTC) + timedelta(hours=1))
    share = (await stubs.documents.GrantDocumentPermission(_grant(
        doc.id, V.DOCUMENT_PERMISSION_TYPE_SHARE, user_id=b.user_id, expire=soon), metadata=a.md)).permission
    assert (await _can(stubs, doc, b))["share"] == "ok"
    await admin_db.execute("UPDATE crm.document_permissions SET expires_at = now() - interval '1 second' "
                           "WHERE id = $1::uuid", share.id)
    assert (await _can(stubs, doc, b))["share"] == "PERMISSION_DENIED"
    # revoking the role's grant takes b back to VIEW
    grants = (await stubs.documents.ListDocumentPermissions(pb.ListDocumentPermissionsRequest(document_id=doc.id),
                                                            metadata=a.md)).permissions
    role_grant = next(p for p in grants if p.role == "staff")
    await stubs.documents.RevokeDocumentPermission(pb.RevokeDocumentPermissionRequest(document_id=doc.id,
                                                                                      id=role_grant.id),
                                                   metadata=a.md)
    assert (await _can(stubs, doc, b))["edit"] == "PERMISSION_DENIED"
    # TEAM visibility: every member views, only grants edit
    await stubs.documents.UpdateDocument(pb.UpdateDocumentRequest(
        document=V.Document(id=doc.id, visibility=V.DOCUMENT_VISIBILITY_TEAM),
        update_mask=field_mask_pb2.FieldMask(paths=["visibility"])), metadata=a.md)
    assert (await _can(stubs, doc, viewer))["view"] == "ok"
    # the viewer role lacks crm.documents.write: refused before any document check
    assert (await _can(stubs, doc, viewer))["edit"] == "PERMISSION_DENIED"
    # a grant is only for an active member, and must name exactly one grantee
    await invalid(stubs.documents.GrantDocumentPermission(_grant(doc.id, V.DOCUMENT_PERMISSION_TYPE_VIEW,
                                                                 user_id=str(uuid.uuid4())), metadata=a.md),
                  "permission.user_id")
    await invalid(stubs.documents.GrantDocumentPermission(_grant(doc.id, V.DOCUMENT_PERMISSION_TYPE_VIEW,
                                                                 user_id=b.user_id, role="staff"), metadata=a.md),
                  "permission.user_id")
    # every access is in the audit trail
    actions = await _audited_actions(admin_db, doc.id)
    assert {"crm.document.upload", "crm.document.grant", "crm.document.download", "crm.document.revoke",
            "crm.document.update"} <= actions

    async def read_audited() -> bool:  # reads are audited in batches, a moment later
        return (b.user_id, "crm.document.read") in await _audited_reads(admin_db, owner.org_id, doc.id)

    await eventually(read_audited, what="b's read of the document in the audit trail")


async def _audited_actions(admin_db, doc_id: str) -> set[str]:
    """The actions of the audit entries crm wrote (through its outbox) about this document."""
    out = set()
    for r in await admin_db.fetch("SELECT body FROM crm.outbox WHERE routing_key = 'crm.audit.recorded' "
                                  "AND aggregate_id = $1", doc_id):
        entry = events.unpack(events.parse(bytes(r["body"])), audit_events_pb2.AuditRecordedEvent)
        out.add(entry.action)
    return out


async def test_a_joined_member_can_manage_a_client(stubs, team):
    """An accepted invitee, once crm has their membership event, may be a client's manager."""
    a, b = team["a"], team["b"]
    c = (await stubs.clients.CreateClient(cpb.CreateClientRequest(client=client_pb2.Client(
        name="Managed Co", assigned_manager_id=b.user_id)), metadata=a.md)).client
    assert c.assigned_manager_id == b.user_id


async def _audited_reads(admin_db, org_id: str, doc_id: str) -> set[tuple[str, str]]:
    out = set()
    for r in await admin_db.fetch("SELECT body FROM crm.outbox WHERE routing_key = 'crm.audit.batch_recorded' "
                                  "AND tenant_id = $1::uuid", org_id):
        batch = events.unpack(events.parse(bytes(r["body"])), audit_events_pb2.AuditBatchRecordedEvent)
        out |= {(e.actor_id, e.action) for e in batch.entries if e.resource_id == doc_id}
    return out


async def test_signed_link_for_a_client_without_an_account(stubs, team, http_base):
    a = team["a"]
    acme, other = await _client(stubs, a, "Acme"), await _client(stubs, a, "Other Co")
    data = PDF + os.urandom(300_000)
    doc = (await upload(stubs, a, data, filename="engagement.pdf", client_id=acme.id,
                        visibility=V.DOCUMENT_VISIBILITY_CLIENT)).document
    link = await stubs.documents.CreateDocumentLink(pb.CreateDocumentLinkRequest(
        document_id=doc.id, client_id=acme.id, ttl_seconds=600), metadata=a.md)
    token = link.url.rsplit("/", 1)[1]
    assert link.url.startswith("http://127.0.0.1:")
    async with httpx.AsyncClient(base_url=http_base) as http:
        r = await http.get(f"/shared/{token}")
        assert r.status_code == 200 and r.content == data
        assert r.headers["content-type"] == "application/pdf" and r.headers["x-content-sha256"] == doc.sha256
        assert (await http.get(f"/shared/{token[:-3]}abc")).status_code == 404  # altered
        assert (await http.get("/shared/nonsense")).status_code == 404
        # another client may not get a link until granted VIEW
        err = await fails(stubs.documents.CreateDocumentLink(pb.CreateDocumentLinkRequest(
            document_id=doc.id, client_id=other.id), metadata=a.md), grpc.StatusCode.FAILED_PRECONDITION)
        assert error_reason(err) == "CLIENT_NOT_ALLOWED"
        g = (await stubs.documents.GrantDocumentPermission(_grant(doc.id, V.DOCUMENT_PERMISSION_TYPE_VIEW,
                                                                  client_id=other.id), metadata=a.md)).permission
        other_link = await stubs.documents.CreateDocumentLink(pb.CreateDocumentLinkRequest(
            document_id=doc.id, client_id=other.id), metadata=a.md)
        other_token = other_link.url.rsplit("/", 1)[1]
        assert (await http.get(f"/shared/{other_token}")).status_code == 200
        # the link keeps checking: revoked, it is gone
        await stubs.documents.RevokeDocumentPermission(pb.RevokeDocumentPermissionRequest(document_id=doc.id,
                                                                                          id=g.id), metadata=a.md)
        assert (await http.get(f"/shared/{other_token}")).status_code == 404
        # made private, the client's own link stops too
        await stubs.documents.UpdateDocument(pb.UpdateDocumentRequest(
            document=V.Document(id=doc.id, visibility=V.DOCUMENT_VISIBILITY_PRIVATE),
            update_mask=field_mask_pb2.FieldMask(paths=["visibility"])), metadata=a.md)
        assert (await http.get(f"/shared/{token}")).status_code == 404
    await invalid(stubs.documents.CreateDocumentLink(pb.CreateDocumentLinkRequest(
        document_id=doc.id, client_id=acme.id, ttl_seconds=5), metadata=a.md), "ttl_seconds")
    await invalid(stubs.documents.GrantDocumentPermission(_grant(doc.id, V.DOCUMENT_PERMISSION_TYPE_EDIT,
                                                                 client_id=acme.id), metadata=a.md),
                  "permission.permission_type")


async def test_expired_link_is_gone(stubs, team, http_base, crm_host):
    from services.crm.domain import links

    a = team["a"]
    acme = await _client(stubs, a)
    doc = (await upload(stubs, a, b"x" * 10, client_id=acme.id, visibility=V.DOCUMENT_VISIBILITY_CLIENT)).document
    worker = next(w for w in crm_host.workers if type(w).__name__ == "PublicHttp")
    expired = links.sign(worker.deps.link_key, links.DOWNLOAD, {"o": a.org_id, "d": doc.id, "c": acme.id},
                         int(datetime.now(UTC).timestamp()) - 1)
    async with httpx.AsyncClient(base_url=http_base) as http:
        assert (await http.get(f"/shared/{expired}")).status_code == 404


async def test_signatures_from_a_contact_and_a_member(stubs, team, http_base, admin_db):
    a, b = team["a"], team["b"]
    acme = await _client(stubs, a)
    contact = (await stubs.clients.CreateContact(cpb.CreateContactRequest(contact=client_pb2.Contact(
        client_id=acme.id, first_name="Carla", last_name="Client", email="carla@acme.example", can_authorize=True)),
        metadata=a.md)).contact
    data = PDF + b"Engagement letter 2026"
    doc = (await upload(stubs, a, data, client_id=acme.id, visibility=V.DOCUMENT_VISIBILITY_TEAM)).document
    req = await stubs.documents.RequestSignatures(pb.RequestSignaturesRequest(
        document_id=doc.id, signers=[pb.SignerRef(contact_id=contact.id), pb.SignerRef(user_id=b.user_id)]),
        metadata=a.md)
    assert req.document.signature_status == V.SIGNATURE_STATUS_PENDING
    by_contact = next(s for s in req.signatures if s.contact_id)
    assert by_contact.signer_name == "Carla Client" and by_contact.sign_url
    # b signs through the API, with their intent
    await invalid(stubs.documents.SignDocument(pb.SignDocumentRequest(document_id=doc.id), metadata=b.md), "intent")
    signed = await stubs.documents.SignDocument(pb.SignDocumentRequest(
        document_id=doc.id, intent="I approve this engagement letter"), metadata=b.md)
    assert signed.signature.status == V.SIGNATURE_STATUS_SIGNED and signed.signature.document_sha256 == doc.sha256
    assert signed.signature.ip_address and signed.document.signature_status == V.SIGNATURE_STATUS_PENDING
    err = await fails(stubs.documents.SignDocument(pb.SignDocumentRequest(document_id=doc.id, intent="again"),
                                                   metadata=b.md), grpc.StatusCode.FAILED_PRECONDITION)
    assert error_reason(err) == "NOT_A_SIGNER"
    # the contact signs through their link, without an account
    token = by_contact.sign_url.rsplit("/", 1)[1]
    async with httpx.AsyncClient(base_url=http_base) as http:
        info = (await http.get(f"/sign/{token}")).json()
        assert info["sha256"] == doc.sha256 and info["signer"] == "Carla Client"
        assert (await http.post(f"/sign/{token}", json={})).status_code == 400
        r = await http.post(f"/sign/{token}", json={"intent": "Agreed on behalf of Acme"},
                            headers={"user-agent": "test-browser"})
        assert r.status_code == 200 and r.json()["document_sha256"] == doc.sha256
        assert (await http.post(f"/sign/{token}", json={"intent": "twice"})).status_code == 404  # used
    sigs = (await stubs.documents.ListDocumentSignatures(pb.ListDocumentSignaturesRequest(document_id=doc.id),
                                                         metadata=a.md)).signatures
    carla = next(s for s in sigs if s.contact_id)
    assert carla.intent == "Agreed on behalf of Acme" and carla.user_agent == "test-browser" and carla.ip_address
    got = (await stubs.documents.GetDocument(pb.GetDocumentRequest(id=doc.id), metadata=a.md)).document
    assert got.signature_status == V.SIGNATURE_STATUS_SIGNED
    # a signed version is final: not deleted, not changed in the database; only superseded
    err = await fails(stubs.documents.DeleteDocument(pb.DeleteDocumentRequest(id=doc.id), metadata=a.md),
                      grpc.StatusCode.FAILED_PRECONDITION)
    assert error_reason(err) == "DOCUMENT_SIGNED"
    with pytest.raises(Exception, match="can only be superseded"):
        await admin_db.execute("UPDATE crm.document_versions SET filename = 'forged.pdf' "
                               "WHERE document_id = $1::uuid AND number = 1", doc.id)
    v2 = await new_version(stubs, a, doc.id, PDF + b"Engagement letter 2026, amended")
    assert v2.document.current_version == 2 and v2.document.signature_status == V.SIGNATURE_STATUS_NONE
    versions = (await stubs.documents.ListDocumentVersions(pb.ListDocumentVersionsRequest(id=doc.id),
                                                           metadata=a.md)).versions
    assert [(v.number, v.signature_status) for v in versions] == [(2, V.SIGNATURE_STATUS_NONE),
                                                                   (1, V.SIGNATURE_STATUS_SIGNED)]
    _, original = await download(stubs, a, doc.id, version=1)
    assert original == data


async def test_another_tenant_gets_not_found_from_every_document_rpc(stubs, tenant, other_tenant):
    acme = await _client(stubs, tenant)
    folder = (await stubs.documents.CreateFolder(pb.CreateFolderRequest(folder=V.Folder(name="F")),
                                                 metadata=tenant.md)).folder
    doc = (await upload(stubs, tenant, b"secret", folder_id=folder.id, client_id=acme.id)).document
    md = other_tenant.md
    d = EveryRpc(stubs.documents, pb, "DocumentService")
    as_other = SimpleNamespace(documents=d)
    nf = grpc.StatusCode.NOT_FOUND
    calls = [
        d.GetFolder(pb.GetFolderRequest(id=folder.id), metadata=md),
        d.UpdateFolder(pb.UpdateFolderRequest(folder=V.Folder(id=folder.id, name="X"),
                                              update_mask=field_mask_pb2.FieldMask(paths=["name"])), metadata=md),
        d.DeleteFolder(pb.DeleteFolderRequest(id=folder.id), metadata=md),
        d.GetDocument(pb.GetDocumentRequest(id=doc.id), metadata=md),
        d.UpdateDocument(pb.UpdateDocumentRequest(document=V.Document(id=doc.id, name="X"),
                                                  update_mask=field_mask_pb2.FieldMask(paths=["name"])), metadata=md),
        d.DeleteDocument(pb.DeleteDocumentRequest(id=doc.id), metadata=md),
        d.ListDocumentVersions(pb.ListDocumentVersionsRequest(id=doc.id), metadata=md),
        d.RestoreDocumentVersion(pb.RestoreDocumentVersionRequest(id=doc.id, number=1), metadata=md),
        d.GrantDocumentPermission(_grant(doc.id, V.DOCUMENT_PERMISSION_TYPE_VIEW, role="staff"), metadata=md),
        d.ListDocumentPermissions(pb.ListDocumentPermissionsRequest(document_id=doc.id), metadata=md),
        d.RevokeDocumentPermission(pb.RevokeDocumentPermissionRequest(document_id=doc.id, id=str(uuid.uuid4())),
                                   metadata=md),
        d.CreateDocumentLink(pb.CreateDocumentLinkRequest(document_id=doc.id, client_id=acme.id), metadata=md),
        d.RequestSignatures(pb.RequestSignaturesRequest(document_id=doc.id, signers=[
            pb.SignerRef(user_id=other_tenant.user_id)]), metadata=md),
        d.SignDocument(pb.SignDocumentRequest(document_id=doc.id, intent="x"), metadata=md),
        d.ListDocumentSignatures(pb.ListDocumentSignaturesRequest(document_id=doc.id), metadata=md),
    ]
    for call in calls:
        await fails(call, nf)
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await download(as_other, other_tenant, doc.id)
    assert e.value.code() == nf
    await fails(d.UploadDocument(_requests(b"v2", pb.DocumentUploadHeader(document_id=doc.id, filename="v2")),
                                 metadata=md), nf)
    await invalid(upload(as_other, other_tenant, b"x", folder_id=folder.id), "header.document.folder_id")
    await invalid(d.CreateFolder(pb.CreateFolderRequest(folder=V.Folder(name="G", parent_id=folder.id)),
                                 metadata=md), "folder.parent_id")
    assert not (await d.ListDocuments(pb.ListDocumentsRequest(), metadata=md)).documents
    assert not (await d.ListFolders(pb.ListFoldersRequest(parent_id=folder.id), metadata=md)).folders
    assert not d.uncalled()  # every DocumentService RPC, as the other tenant
