"""Who may reach a document besides its owner and its visibility: grants (view, edit, delete, share
to a user, a role or a client, with expiry) and time-limited signed download links for a client
with no account."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from chassis.db import UnitOfWork
from chassis.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Violations,
)
from chassis.resource import found, parse_id
from services.crm.domain import documents as rules
from services.crm.domain import links
from services.crm.domain.documents import Caller
from services.crm.handlers.clients import caller_user
from services.crm.store import clients as clients_store
from services.crm.store import documents as store
from services.crm.store import members as members_store

if TYPE_CHECKING:  # the interface only: the store itself is injected
    pass
from services.crm.handlers.documents import DocumentDeps, document_for, grants_of, now, record_read


async def grant(deps: DocumentDeps, org: uuid.UUID, doc_id: str, *, user_id: str, role: str, client_id: str,
                permission_type: str | None, expires_at: datetime | None) -> dict:
    v = Violations()
    parse_id(doc_id, "permission.document_id", v)
    grantee = rules.permission_grantee(user_id, role, client_id, v)
    if permission_type not in rules.PERMISSION_TYPES:
        v.add("permission.permission_type", "must be VIEW, EDIT, DELETE or SHARE")
    if expires_at is not None and expires_at <= now():
        v.add("permission.expire_time", "must be in the future")
    v.raise_if_any()
    async with deps.db.unit_of_work(org) as uow:
        doc = await document_for(uow, org, doc_id, rules.SHARE, field="permission.document_id")
        if grantee["client_id"] and not await clients_store.client_is_live(uow.conn, org,
                                                                           uuid.UUID(grantee["client_id"])):
            raise InvalidArgument.field("permission.client_id", "no such client")
        if grantee["user_id"] and not await members_store.is_active(uow.conn, org, uuid.UUID(grantee["user_id"])):
            raise InvalidArgument.field("permission.user_id", "is not an active member of the organization")
        if grantee["client_id"] and permission_type != rules.VIEW:
            raise InvalidArgument.field("permission.permission_type", "a client may only be granted VIEW")
        row = await store.insert_grant(uow.conn, org, uuid.uuid4(), doc["id"],
                                       {**grantee, "permission_type": permission_type, "expires_at": expires_at},
                                       caller_user())
        uow.audit("crm.document.grant", "document", str(doc["id"]),
                  after={**grantee, "permission_type": permission_type, "expires_at": expires_at,
                         "permission_id": str(row["id"])})
        return row


async def list_grants(deps: DocumentDeps, org: uuid.UUID, doc_id: str) -> list[dict]:
    async with deps.db.unit_of_work(org) as uow:
        doc = await document_for(uow, org, doc_id, rules.SHARE, field="document_id")
        rows = await store.grants(uow.conn, org, doc["id"])
    record_read(deps, "crm.document.permissions", doc["id"])
    return rows


async def revoke(deps: DocumentDeps, org: uuid.UUID, doc_id: str, grant_id: str) -> None:
    gid = parse_id(grant_id, "id")
    async with deps.db.unit_of_work(org) as uow:
        doc = await document_for(uow, org, doc_id, rules.SHARE, field="document_id")
        row = found(await store.delete_grant(uow.conn, org, doc["id"], gid), "permission", grant_id)
        uow.audit("crm.document.revoke", "document", str(doc["id"]), before={k: row[k] for k in row})


# -- signed links ------------------------------------------------------------------------------


async def create_link(deps: DocumentDeps, org: uuid.UUID, doc_id: str, client_id: str,
                      ttl_seconds: int) -> tuple[str, datetime]:
    v = Violations()
    parse_id(doc_id, "document_id", v)
    cid = parse_id(client_id, "client_id", v)
    ttl = rules.link_seconds(ttl_seconds, deps.max_link_seconds, "ttl_seconds", v)
    v.raise_if_any()
    async with deps.db.unit_of_work(org) as uow:
        doc = await document_for(uow, org, doc_id, rules.SHARE, field="document_id")
        if not await clients_store.client_is_live(uow.conn, org, cid):
            raise InvalidArgument.field("client_id", "no such client")
        await _client_may_view(uow, org, doc, cid, doc_id, FailedPrecondition)
        expires = int(time.time()) + ttl
        token = links.sign(deps.link_key, links.DOWNLOAD, {"o": str(org), "d": str(doc["id"]), "c": str(cid)},
                           expires)
        uow.audit("crm.document.link", "document", str(doc["id"]),
                  after={"client_id": str(cid), "expires_at": datetime.fromtimestamp(expires, UTC)})
    return f"{deps.public_url.rstrip('/')}/shared/{token}", datetime.fromtimestamp(expires, UTC)


async def _client_may_view(uow: UnitOfWork, org: uuid.UUID, doc: dict, client_id: uuid.UUID, name: str,
                           error: type) -> None:
    grants = grants_of(await store.grants(uow.conn, org, doc["id"]))
    if not rules.allowed(rules.VIEW, caller=Caller(client_id=client_id), owner_id=doc["owner_id"],
                         visibility=doc["visibility"], client_id=doc["client_id"], grants=grants, now=now()):
        if error is FailedPrecondition:
            raise FailedPrecondition(f"client {client_id} may not view document {name}: make it a CLIENT "
                                     "document of theirs, or grant them VIEW", reason="CLIENT_NOT_ALLOWED")
        raise error(f"document {name} not found")


async def open_link(deps: DocumentDeps, token: str, ip: str) -> dict | None:
    """The current version a download link opens, audited; None for a bad, expired or revoked link."""
    claims = links.verify(deps.link_key, links.DOWNLOAD, token)
    if claims is None:
        return None
    org, did, cid = uuid.UUID(claims["o"]), uuid.UUID(claims["d"]), uuid.UUID(claims["c"])
    async with deps.db.unit_of_work(org) as uow:
        doc = await store.get_document(uow.conn, org, did)
        if doc is None or not await clients_store.client_is_live(uow.conn, org, cid):
            return None
        try:
            await _client_may_view(uow, org, doc, cid, str(did), NotFound)
        except NotFound:
            return None
        version = await store.version(uow.conn, org, did, doc["current_version"])
        uow.audit("crm.document.download_by_link", "document", str(did), actor_id=str(cid), actor_kind="client",
                  ip_address=ip or None, after={"version": version["number"], "sha256": version["sha256"]})
    return version
