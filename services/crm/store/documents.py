"""crm's folder, document, version, permission and signature SQL."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy.exc import IntegrityError

from chassis import sql
from chassis.db import Connection
from chassis.errors import AlreadyExists
from chassis.sql import Where
from services.crm.store.clients import Row

# -- folders -----------------------------------------------------------------------------------

_FOLDER_SELECT = ("SELECT id, organization_id, parent_id, name, version, created_at, updated_at, "
                  "crm.folder_path(organization_id, id) AS path FROM crm.folders")


def _name_taken(exc: IntegrityError, name: str) -> None:
    if "folders_sibling_name" in str(exc):
        raise AlreadyExists(f"a folder named {name!r} is already there", reason="FOLDER_NAME_TAKEN") from None
    raise exc


async def lock_tree(conn: Connection, org: uuid.UUID) -> None:
    """The organization's folder lock: moves and creates hold it until their transaction ends,
    so a cycle check and the move it allows cannot interleave with another move."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('crm.folders:' || CAST(:org AS text), 0))",
                       {"org": str(org)})


async def insert_folder(conn: Connection, org: uuid.UUID, folder_id: uuid.UUID, parent_id: uuid.UUID | None,
                        name: str, created_by: uuid.UUID | None, request_id: str | None) -> bool:
    try:
        async with conn.begin_nested():
            result = await conn.execute(
                "INSERT INTO crm.folders (id, organization_id, parent_id, name, created_by, create_request_id) "
                "VALUES (:id, :org, :parent, :name, :by, :rid) "
                "ON CONFLICT (organization_id, create_request_id) WHERE create_request_id IS NOT NULL DO NOTHING",
                {"id": folder_id, "org": org, "parent": parent_id, "name": name, "by": created_by, "rid": request_id})
    except IntegrityError as exc:
        _name_taken(exc, name)
    return result.rowcount == 1


async def folder_by_request_id(conn: Connection, org: uuid.UUID, request_id: str) -> uuid.UUID | None:
    return await sql.id_by_request_id(conn, "crm.folders", org, request_id)


async def get_folder(conn: Connection, org: uuid.UUID, folder_id: uuid.UUID, *,
                     for_update: bool = False) -> dict[str, Any] | None:
    return await sql.by_id(conn, _FOLDER_SELECT, org, folder_id, Row, live=True, for_update=for_update)


async def folder_is_live(conn: Connection, org: uuid.UUID, folder_id: uuid.UUID) -> bool:
    return await sql.exists(conn, "crm.folders", org, folder_id, live=True, lock="FOR SHARE")


async def is_within(conn: Connection, org: uuid.UUID, folder_id: uuid.UUID, ancestor_id: uuid.UUID) -> bool:
    """Whether folder_id is ancestor_id or lies below it (walking up from folder_id)."""
    return bool((await conn.execute(
        "WITH RECURSIVE up(id, parent_id) AS ("
        "  SELECT id, parent_id FROM crm.folders WHERE organization_id = :org AND id = :id"
        "  UNION SELECT f.id, f.parent_id FROM crm.folders f JOIN up ON f.id = up.parent_id"
        "  WHERE f.organization_id = :org) "
        "SELECT EXISTS (SELECT 1 FROM up WHERE id = :ancestor)",
        {"org": org, "id": folder_id, "ancestor": ancestor_id})).scalar())


async def update_folder(conn: Connection, org: uuid.UUID, folder_id: uuid.UUID, name: str,
                        parent_id: uuid.UUID | None) -> None:
    try:
        async with conn.begin_nested():
            await sql.update_row(conn, "crm.folders", org, folder_id, {"name": name, "parent_id": parent_id},
                                 casts={"parent_id": "uuid"})
    except IntegrityError as exc:
        _name_taken(exc, name)


async def folder_is_empty(conn: Connection, org: uuid.UUID, folder_id: uuid.UUID) -> bool:
    return not (await conn.execute(
        "SELECT EXISTS (SELECT 1 FROM crm.folders WHERE organization_id = :org AND parent_id = :id "
        "AND deleted_at IS NULL) OR EXISTS (SELECT 1 FROM crm.documents WHERE organization_id = :org "
        "AND folder_id = :id AND deleted_at IS NULL)", {"org": org, "id": folder_id})).scalar()


async def delete_folder(conn: Connection, org: uuid.UUID, folder_id: uuid.UUID) -> None:
    await sql.soft_delete(conn, "crm.folders", org, folder_id)


async def page_folders(conn: Connection, org: uuid.UUID, parent_id: uuid.UUID | None, after: list | None,
                       limit: int) -> list[dict[str, Any]]:
    where = Where("organization_id = :org", "deleted_at IS NULL", org=org, limit=limit)
    if parent_id is None:
        where.add("parent_id IS NULL")
    else:
        where.add("parent_id = :parent", parent=parent_id)
    where.keyset("(lower(name), id) >", after)
    return await sql.every(conn, f"{_FOLDER_SELECT} WHERE {where} ORDER BY lower(name), id LIMIT :limit",
                           where.params, dict)


# -- blobs -------------------------------------------------------------------------------------


async def blob_by_hash(conn: Connection, org: uuid.UUID, sha256: str) -> dict[str, Any] | None:
    return await sql.first(conn, "SELECT id, sha256, size_bytes, mime_type, storage_key FROM crm.document_blobs "
                           "WHERE organization_id = :org AND sha256 = :sha", {"org": org, "sha": sha256}, dict)


async def insert_blob(conn: Connection, org: uuid.UUID, blob_id: uuid.UUID, sha256: str, size: int, mime: str,
                      key: str) -> dict[str, Any] | None:
    """The new blob; None when the organization already holds these bytes (blob_by_hash has them)."""
    return await sql.first(
        conn, "INSERT INTO crm.document_blobs (id, organization_id, sha256, size_bytes, mime_type, storage_key) "
        "VALUES (:id, :org, :sha, :size, :mime, :key) ON CONFLICT (organization_id, sha256) DO NOTHING "
        "RETURNING id, sha256, size_bytes, mime_type, storage_key",
        {"id": blob_id, "org": org, "sha": sha256, "size": size, "mime": mime, "key": key}, dict)


# -- documents ---------------------------------------------------------------------------------

DOCUMENT_COLUMNS = ("name", "folder_id", "client_id", "document_type", "tags", "visibility", "description",
                    "metadata")
_DOC_CASTS = {"metadata": "jsonb", "folder_id": "uuid", "client_id": "uuid"}
_DOC_SELECT = (
    "SELECT d.id, d.organization_id, d.folder_id, d.client_id, d.name, d.document_type, d.tags, d.visibility, "
    "d.description, d.metadata, d.current_version, d.owner_id, d.version, d.created_at, d.updated_at, "
    "v.filename, v.size_bytes, v.mime_type, v.sha256, b.storage_key, "
    "(SELECT CASE WHEN count(*) = 0 THEN 'none' WHEN bool_and(s.status = 'signed') THEN 'signed' "
    "  ELSE 'pending' END FROM crm.document_signatures s "
    "  WHERE s.document_id = d.id AND s.version_number = d.current_version) AS signature_status "
    "FROM crm.documents d JOIN crm.document_versions v ON v.document_id = d.id AND v.is_current "
    "JOIN crm.document_blobs b ON b.id = v.blob_id")


def _document(row: Any) -> dict[str, Any]:
    d = Row(row)
    d["metadata"] = sql.json_object(d["metadata"])
    return d


def _doc_params(values: dict[str, Any]) -> dict[str, Any]:
    out = {c: values.get(c) for c in DOCUMENT_COLUMNS}
    out["metadata"] = json.dumps(out["metadata"] or {})
    for c in ("folder_id", "client_id"):
        out[c] = uuid.UUID(out[c]) if out[c] else None
    return out


async def insert_document(conn: Connection, org: uuid.UUID, doc_id: uuid.UUID, values: dict[str, Any],
                          owner: uuid.UUID | None, request_id: str | None) -> bool:
    cols = ", ".join(DOCUMENT_COLUMNS)
    vals = ", ".join(f"CAST(:{c} AS {_DOC_CASTS[c]})" if c in _DOC_CASTS else f":{c}" for c in DOCUMENT_COLUMNS)
    result = await conn.execute(
        f"INSERT INTO crm.documents (id, organization_id, owner_id, create_request_id, {cols}) "
        f"VALUES (:id, :org, :owner, :rid, {vals}) "
        "ON CONFLICT (organization_id, create_request_id) WHERE create_request_id IS NOT NULL DO NOTHING",
        {"id": doc_id, "org": org, "owner": owner, "rid": request_id, **_doc_params(values)})
    return result.rowcount == 1


async def document_by_request_id(conn: Connection, org: uuid.UUID, request_id: str) -> uuid.UUID | None:
    return await sql.id_by_request_id(conn, "crm.documents", org, request_id)


async def get_document(conn: Connection, org: uuid.UUID, doc_id: uuid.UUID, *,
                       for_update: bool = False) -> dict[str, Any] | None:
    if for_update:
        await conn.execute("SELECT 1 FROM crm.documents WHERE organization_id = :org AND id = :id FOR UPDATE",
                           {"org": org, "id": doc_id})
    return await sql.by_id(conn, _DOC_SELECT, org, doc_id, _document, alias="d", live=True)


async def update_document(conn: Connection, org: uuid.UUID, doc_id: uuid.UUID, values: dict[str, Any]) -> None:
    await sql.update_row(conn, "crm.documents", org, doc_id, _doc_params(values), casts=_DOC_CASTS)


async def delete_document(conn: Connection, org: uuid.UUID, doc_id: uuid.UUID) -> None:
    await sql.soft_delete(conn, "crm.documents", org, doc_id)


async def page_documents(conn: Connection, org: uuid.UUID, *, filters: dict[str, Any], metadata: dict | None,
                         viewer: dict[str, Any] | None, after: list | None, limit: int) -> list[dict[str, Any]]:
    """Newest first. `viewer` (user_id, role) leaves out what that member may not view; None
    (a document manager) sees all."""
    where = Where("d.organization_id = :org", "d.deleted_at IS NULL", org=org, limit=limit)
    where.filters("d.{c} = :{c}", ((c, filters.get(c)) for c in ("folder_id", "client_id", "document_type")))
    where.filter(":tag = ANY(d.tags)", tag=filters.get("tag"))
    if metadata:
        where.add("d.metadata @> CAST(:meta AS jsonb)", meta=json.dumps(metadata))
    if viewer is not None:
        where.add("(d.owner_id = :me OR d.visibility IN ('team', 'client') OR EXISTS ("
                  " SELECT 1 FROM crm.document_permissions p WHERE p.organization_id = d.organization_id"
                  " AND p.document_id = d.id AND (p.user_id = :me OR p.role = :role)"
                  " AND (p.expires_at IS NULL OR p.expires_at > now())))",
                  me=viewer["user_id"], role=viewer["role"])
    where.keyset("(d.created_at, d.id) <", after)
    return await sql.every(conn, f"{_DOC_SELECT} WHERE {where} ORDER BY d.created_at DESC, d.id DESC LIMIT :limit",
                           where.params, _document)


# -- versions ----------------------------------------------------------------------------------

_VERSION_SELECT = (
    "SELECT v.document_id, v.number, v.filename, v.size_bytes, v.mime_type, v.sha256, v.is_current, "
    "v.restored_from, v.uploaded_by, v.created_at, v.blob_id, b.storage_key, "
    "(SELECT CASE WHEN count(*) = 0 THEN 'none' WHEN bool_and(s.status = 'signed') THEN 'signed' "
    "  ELSE 'pending' END FROM crm.document_signatures s "
    "  WHERE s.document_id = v.document_id AND s.version_number = v.number) AS signature_status "
    "FROM crm.document_versions v JOIN crm.document_blobs b ON b.id = v.blob_id")


async def add_version(conn: Connection, org: uuid.UUID, doc_id: uuid.UUID, number: int, blob: dict[str, Any],
                      filename: str, uploaded_by: uuid.UUID | None, restored_from: int | None = None) -> None:
    """The new current version: the one before stops being current first (one current version).
    Version 1 of a document just inserted (its current_version is 1 already) is one statement."""
    if number > 1:
        await conn.execute("UPDATE crm.document_versions SET is_current = false "
                           "WHERE organization_id = :org AND document_id = :doc AND is_current",
                           {"org": org, "doc": doc_id})
    await conn.execute(
        "INSERT INTO crm.document_versions (id, organization_id, document_id, number, blob_id, filename, size_bytes, "
        "mime_type, sha256, uploaded_by, restored_from) VALUES (:id, :org, :doc, :n, :blob, :fn, :size, :mime, :sha, "
        ":by, :from)",
        {"id": uuid.uuid4(), "org": org, "doc": doc_id, "n": number, "blob": blob["id"], "fn": filename,
         "size": blob["size_bytes"], "mime": blob["mime_type"], "sha": blob["sha256"], "by": uploaded_by,
         "from": restored_from})
    if number == 1:
        return
    await conn.execute("UPDATE crm.documents SET current_version = :n, version = version + 1, updated_at = now() "
                       "WHERE organization_id = :org AND id = :doc", {"org": org, "doc": doc_id, "n": number})


async def versions(conn: Connection, org: uuid.UUID, doc_id: uuid.UUID) -> list[dict[str, Any]]:
    return await sql.every(conn, f"{_VERSION_SELECT} WHERE v.organization_id = :org AND v.document_id = :doc "
                           "ORDER BY v.number DESC", {"org": org, "doc": doc_id}, dict)


async def version(conn: Connection, org: uuid.UUID, doc_id: uuid.UUID, number: int) -> dict[str, Any] | None:
    return await sql.first(conn, f"{_VERSION_SELECT} WHERE v.organization_id = :org AND v.document_id = :doc "
                           "AND v.number = :n", {"org": org, "doc": doc_id, "n": number}, dict)


async def max_version(conn: Connection, org: uuid.UUID, doc_id: uuid.UUID) -> int:
    return (await conn.execute("SELECT max(number) FROM crm.document_versions WHERE organization_id = :org "
                               "AND document_id = :doc", {"org": org, "doc": doc_id})).scalar() or 0


async def has_signed_version(conn: Connection, org: uuid.UUID, doc_id: uuid.UUID) -> bool:
    return bool((await conn.execute(
        "SELECT 1 FROM crm.document_signatures WHERE organization_id = :org AND document_id = :doc "
        "AND status = 'signed' LIMIT 1", {"org": org, "doc": doc_id})).scalar())


# -- permissions -------------------------------------------------------------------------------

_PERMISSION_SELECT = ("SELECT id, document_id, user_id, role, client_id, permission_type, granted_by, expires_at, "
                      "created_at FROM crm.document_permissions")


async def grants(conn: Connection, org: uuid.UUID, doc_id: uuid.UUID) -> list[dict[str, Any]]:
    return await sql.every(conn, f"{_PERMISSION_SELECT} WHERE organization_id = :org AND document_id = :doc "
                           "ORDER BY created_at, id", {"org": org, "doc": doc_id}, dict)


async def insert_grant(conn: Connection, org: uuid.UUID, grant_id: uuid.UUID, doc_id: uuid.UUID,
                       values: dict[str, Any], granted_by: uuid.UUID | None) -> dict[str, Any]:
    return await sql.first(
        conn, "INSERT INTO crm.document_permissions (id, organization_id, document_id, user_id, role, client_id, "
        "permission_type, granted_by, expires_at) VALUES (:id, :org, :doc, CAST(:user_id AS uuid), :role, "
        "CAST(:client_id AS uuid), :permission_type, :by, :expires_at) RETURNING id, document_id, user_id, role, "
        "client_id, permission_type, granted_by, expires_at, created_at",
        {"id": grant_id, "org": org, "doc": doc_id, "by": granted_by, **values}, dict)


async def delete_grant(conn: Connection, org: uuid.UUID, doc_id: uuid.UUID, grant_id: uuid.UUID) -> dict | None:
    return await sql.first(conn, "DELETE FROM crm.document_permissions WHERE organization_id = :org "
                           "AND document_id = :doc AND id = :id RETURNING id, user_id, role, client_id, "
                           "permission_type, expires_at", {"org": org, "doc": doc_id, "id": grant_id}, dict)


# -- signatures --------------------------------------------------------------------------------

_SIGNATURE_SELECT = ("SELECT id, document_id, version_number, contact_id, user_id, signer_name, signer_email, "
                     "status, signed_at, intent, ip_address, user_agent, document_sha256 FROM crm.document_signatures")


async def signatures(conn: Connection, org: uuid.UUID, doc_id: uuid.UUID) -> list[dict[str, Any]]:
    return await sql.every(conn, f"{_SIGNATURE_SELECT} WHERE organization_id = :org AND document_id = :doc "
                           "ORDER BY version_number DESC, created_at, id", {"org": org, "doc": doc_id}, dict)


async def contact_signer(conn: Connection, org: uuid.UUID, contact_id: uuid.UUID) -> dict[str, Any] | None:
    return await sql.first(conn, "SELECT first_name || ' ' || last_name AS name, email FROM crm.contacts "
                           "WHERE organization_id = :org AND id = :id AND deleted_at IS NULL FOR SHARE",
                           {"org": org, "id": contact_id}, dict)


async def insert_signature(conn: Connection, org: uuid.UUID, doc_id: uuid.UUID, number: int, *,
                           contact_id: uuid.UUID | None, user_id: uuid.UUID | None, name: str, email: str | None,
                           requested_by: uuid.UUID | None) -> dict[str, Any] | None:
    """The pending signature, or None when that signer was already asked for this version."""
    return await sql.first(
        conn, "INSERT INTO crm.document_signatures (id, organization_id, document_id, version_number, contact_id, "
        "user_id, signer_name, signer_email, requested_by) VALUES (:id, :org, :doc, :n, :contact, :user, :name, "
        ":email, :by) ON CONFLICT DO NOTHING RETURNING id, document_id, version_number, contact_id, user_id, "
        "signer_name, signer_email, status, signed_at, intent, ip_address, user_agent, document_sha256",
        {"id": uuid.uuid4(), "org": org, "doc": doc_id, "n": number, "contact": contact_id, "user": user_id,
         "name": name, "email": email, "by": requested_by}, dict)


async def pending_signature(conn: Connection, org: uuid.UUID, doc_id: uuid.UUID, *, user_id: uuid.UUID | None = None,
                            signature_id: uuid.UUID | None = None) -> dict[str, Any] | None:
    cond = "user_id = :user" if signature_id is None else "id = :sid"
    return await sql.first(conn, f"{_SIGNATURE_SELECT} WHERE organization_id = :org AND document_id = :doc "
                           f"AND {cond} AND status = 'pending' ORDER BY version_number DESC LIMIT 1 FOR UPDATE",
                           {"org": org, "doc": doc_id, "user": user_id, "sid": signature_id}, dict)


async def record_signing(conn: Connection, org: uuid.UUID, signature_id: uuid.UUID, *, intent: str, ip: str,
                         user_agent: str, sha256: str, by_user: uuid.UUID | None) -> dict[str, Any]:
    return await sql.first(
        conn, "UPDATE crm.document_signatures SET status = 'signed', signed_at = now(), intent = :intent, "
        "ip_address = :ip, user_agent = :ua, document_sha256 = :sha, signed_by_user = :by "
        "WHERE organization_id = :org AND id = :id RETURNING id, document_id, version_number, contact_id, user_id, "
        "signer_name, signer_email, status, signed_at, intent, ip_address, user_agent, document_sha256",
        {"org": org, "id": signature_id, "intent": intent, "ip": ip or None, "ua": user_agent or None, "sha": sha256,
         "by": by_user}, dict)
