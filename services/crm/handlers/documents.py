"""Document use cases: read, list, update, delete, download and versions; and what every
document use case shares: its dependencies, the caller, and the access check.

Every document use case checks the caller's access to that document (domain.documents.allowed)
on top of the tenant and the method's permission, and is audited. The rest of the firm's
documents: handlers.folders (the tree), handlers.uploads (streamed, hashed, stored once),
handlers.document_access (grants and signed links), handlers.signatures.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from givance.events.v1 import crm_events_pb2

from chassis import context
from chassis.audit import ReadAudit
from chassis.db import Database, UnitOfWork
from chassis.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Violations,
)
from chassis.resource import Keyset, current, expand_mask, found, parse_id, parse_optional_id
from services.crm.domain import documents as rules
from services.crm.domain.documents import Caller, Grant
from services.crm.handlers.clients import caller_user
from services.crm.store import clients as clients_store
from services.crm.store import documents as store

if TYPE_CHECKING:  # the interface only: the store itself is injected
    from services.crm.providers.object_store import ObjectStore


@dataclass
class DocumentDeps:
    db: Database
    objects: ObjectStore
    reads: ReadAudit | None
    max_document_bytes: int
    link_key: bytes
    max_link_seconds: int
    public_url: str


def current_caller() -> Caller:
    ctx = context.current_or_none()
    principal = ctx.principal if ctx else None
    if principal is None:
        return Caller()
    return Caller(user_id=caller_user(), role=principal.role, manages=principal.can("crm.documents.manage"))


def now() -> datetime:
    return datetime.now(UTC)



def grants_of(rows: list[dict]) -> list[Grant]:
    return [Grant(user_id=g["user_id"], role=g["role"], client_id=g["client_id"],
                  permission_type=g["permission_type"], expires_at=g["expires_at"]) for g in rows]


async def check_access(conn, org: uuid.UUID, doc: dict, caller: Caller, action: str, name: str) -> None:
    """NOT_FOUND without view access (never confirm a document exists); PERMISSION_DENIED with
    view but not `action`."""
    grants = grants_of(await store.grants(conn, org, doc["id"]))

    def can(a: str) -> bool:
        return rules.allowed(a, caller=caller, owner_id=doc["owner_id"], visibility=doc["visibility"],
                             client_id=doc["client_id"], grants=grants, now=now())

    if can(action):
        return
    if action != rules.VIEW and can(rules.VIEW):
        raise PermissionDenied(f"no {action} access to document {name}", reason="DOCUMENT_ACCESS_DENIED",
                               metadata={"access": action})
    raise NotFound(f"document {name} not found")


async def document_for(uow: UnitOfWork, org: uuid.UUID, doc_id: str, action: str, *, field: str = "id",
                    for_update: bool = False, caller: Caller | None = None) -> dict:
    did = parse_id(doc_id, field)
    doc = found(await store.get_document(uow.conn, org, did, for_update=for_update), "document", doc_id)
    await check_access(uow.conn, org, doc, caller or current_caller(), action, doc_id)
    return doc


def record_read(deps: DocumentDeps, action: str, doc_id: Any, after: dict | None = None) -> None:
    if deps.reads is not None:
        deps.reads.record(action, "document", str(doc_id), after=after)



DOC_AUDITED = ("name", "folder_id", "client_id", "document_type", "tags", "visibility", "description", "metadata")


def audited(values: dict) -> dict:
    return {k: values.get(k) for k in DOC_AUDITED}


async def check_links(uow: UnitOfWork, org: uuid.UUID, clean: dict, prefix: str) -> None:
    v = Violations()
    if clean.get("folder_id") and not await store.folder_is_live(uow.conn, org, uuid.UUID(clean["folder_id"])):
        v.add(f"{prefix}.folder_id", "no such folder")
    if clean.get("client_id") and not await clients_store.client_is_live(uow.conn, org,
                                                                         uuid.UUID(clean["client_id"])):
        v.add(f"{prefix}.client_id", "no such client")
    v.raise_if_any()



# -- documents ---------------------------------------------------------------------------------


async def get_document(deps: DocumentDeps, org: uuid.UUID, doc_id: str) -> dict:
    async with deps.db.unit_of_work(org) as uow:
        doc = await document_for(uow, org, doc_id, rules.VIEW)
    record_read(deps, "crm.document.read", doc["id"])
    return doc


async def list_documents(deps: DocumentDeps, org: uuid.UUID, *, folder_id: str, client_id: str, tag: str,
                         document_type: str, metadata: dict, page_size: int, page_token: str):
    v = Violations()
    filters = {"folder_id": parse_optional_id(folder_id, "folder_id", v),
               "client_id": parse_optional_id(client_id, "client_id", v),
               "tag": tag.strip() or None, "document_type": document_type.strip() or None}
    for attr, maximum in (("tag", rules.MAX_TAG), ("document_type", rules.MAX_TYPE)):
        if len(filters[attr] or "") > maximum:
            v.add(attr, f"must be at most {maximum} characters")
    v.raise_if_any()
    caller = current_caller()
    viewer = None if caller.manages else {"user_id": caller.user_id, "role": caller.role}
    page = Keyset.of(page_size, page_token, ("documents", *(str(filters[k] or "") for k in sorted(filters)),
                                             json.dumps(metadata, sort_keys=True)),
                     (datetime.fromisoformat, uuid.UUID))
    async with deps.db.unit_of_work(org) as uow:
        rows = await store.page_documents(uow.conn, org, filters=filters, metadata=metadata or None, viewer=viewer,
                                          after=page.after, limit=page.limit)
    rows, token = page.cut(rows, lambda r: (r["created_at"], r["id"]))
    for r in rows:
        record_read(deps, "crm.document.list", r["id"])
    return rows, token


async def update_document(deps: DocumentDeps, org: uuid.UUID, doc_id: str, etag: str, patch: dict,
                          mask: list[str]) -> dict:
    v = Violations()
    parse_id(doc_id, "document.id")
    paths = expand_mask(mask, rules.DOCUMENT_PATHS, "update_mask", v)
    v.raise_if_any()
    async with deps.db.unit_of_work(org) as uow:
        doc = await document_for(uow, org, doc_id, rules.EDIT, field="document.id", for_update=True)
        current(doc, "document", doc_id, etag, "document.etag")
        raw = {k: (str(doc[k]) if k in ("folder_id", "client_id") and doc[k] else doc[k]) for k in DOC_AUDITED}
        raw.update({p: patch.get(p) for p in paths})
        raw["problems"] = {k: d for k, d in patch.get("problems", {}).items() if k.split(".")[1] in paths}
        clean = rules.normalize_document(raw, "document", v)
        v.raise_if_any()
        await check_links(uow, org, {p: clean[p] for p in paths if p in ("folder_id", "client_id")}, "document")
        await store.update_document(uow.conn, org, doc["id"], clean)
        updated = await store.get_document(uow.conn, org, doc["id"])
        uow.audit_change("crm.document.update", "document", str(doc["id"]), audited(doc), audited(updated))
        uow.publish("crm.document.updated", crm_events_pb2.DocumentChangedEvent(
            document_id=str(doc["id"]), version=updated["current_version"], sha256=updated["sha256"],
            size_bytes=updated["size_bytes"], mime_type=updated["mime_type"],
            client_id=str(updated["client_id"] or "")), aggregate_type="document", aggregate_id=str(doc["id"]))
        return updated


async def delete_document(deps: DocumentDeps, org: uuid.UUID, doc_id: str, etag: str) -> None:
    async with deps.db.unit_of_work(org) as uow:
        doc = await document_for(uow, org, doc_id, rules.DELETE, for_update=True)
        current(doc, "document", doc_id, etag, "etag")
        if await store.has_signed_version(uow.conn, org, doc["id"]):
            raise FailedPrecondition(f"document {doc_id} has a signed version: it stays on record",
                                     reason="DOCUMENT_SIGNED")
        await store.delete_document(uow.conn, org, doc["id"])
        uow.audit("crm.document.delete", "document", str(doc["id"]), before=audited(doc))
        uow.publish("crm.document.deleted", crm_events_pb2.DocumentChangedEvent(document_id=str(doc["id"])),
                    aggregate_type="document", aggregate_id=str(doc["id"]))


async def open_version(deps: DocumentDeps, org: uuid.UUID, doc_id: str, number: int) -> dict:
    """The version to download (0: the current one), after the view check; audited."""
    if number < 0:
        raise InvalidArgument.field("version", "must be 0 (current) or a version number")
    async with deps.db.unit_of_work(org) as uow:
        doc = await document_for(uow, org, doc_id, rules.VIEW)
        version = found(await store.version(uow.conn, org, doc["id"], number or doc["current_version"]),
                        "version", f"{doc_id}/{number}")
        uow.audit("crm.document.download", "document", str(doc["id"]),
                  after={"version": version["number"], "sha256": version["sha256"]})
    return version


def stream(deps: DocumentDeps, version: dict) -> AsyncIterator[bytes]:
    return deps.objects.get(version["storage_key"])


async def list_versions(deps: DocumentDeps, org: uuid.UUID, doc_id: str) -> list[dict]:
    async with deps.db.unit_of_work(org) as uow:
        doc = await document_for(uow, org, doc_id, rules.VIEW)
        rows = await store.versions(uow.conn, org, doc["id"])
    record_read(deps, "crm.document.versions", doc["id"])
    return rows


async def restore_version(deps: DocumentDeps, org: uuid.UUID, doc_id: str, number: int, etag: str):
    async with deps.db.unit_of_work(org) as uow:
        doc = await document_for(uow, org, doc_id, rules.EDIT, for_update=True)
        current(doc, "document", doc_id, etag, "etag")
        old = await store.version(uow.conn, org, doc["id"], number)
        if old is None:
            raise InvalidArgument.field("number", f"document {doc_id} has no version {number}")
        if old["is_current"]:
            raise FailedPrecondition(f"version {number} is already the current version", reason="ALREADY_CURRENT")
        new_number = await store.max_version(uow.conn, org, doc["id"]) + 1
        blob = {"id": old["blob_id"], "size_bytes": old["size_bytes"], "mime_type": old["mime_type"],
                "sha256": old["sha256"]}
        await store.add_version(uow.conn, org, doc["id"], new_number, blob, old["filename"], caller_user(),
                                restored_from=number)
        uow.audit("crm.document.restore_version", "document", str(doc["id"]),
                  after={"version": new_number, "restored_from": number, "sha256": old["sha256"]})
        uow.publish("crm.document.version_added", crm_events_pb2.DocumentChangedEvent(
            document_id=str(doc["id"]), version=new_number, sha256=old["sha256"], size_bytes=old["size_bytes"],
            mime_type=old["mime_type"], client_id=str(doc["client_id"] or "")),
            aggregate_type="document", aggregate_id=str(doc["id"]))
        return await store.get_document(uow.conn, org, doc["id"]), await store.version(uow.conn, org, doc["id"],
                                                                                      new_number)
