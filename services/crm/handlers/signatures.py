"""Signatures: requested from named signers (a contact, through a signed link, or a member), each
recorded with its intent, who, when, from where and the signed version's hash. A signed version
is never changed, only superseded."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING

from givance.events.v1 import crm_events_pb2

from chassis import context
from chassis.db import UnitOfWork
from chassis.errors import (
    FailedPrecondition,
    InvalidArgument,
    Violations,
)
from chassis.resource import parse_id, parse_optional_id
from services.crm.domain import documents as rules
from services.crm.domain import links
from services.crm.handlers.clients import caller_user
from services.crm.store import documents as store
from services.crm.store import members as members_store

if TYPE_CHECKING:  # the interface only: the store itself is injected
    pass
from services.crm.handlers.documents import DocumentDeps, document_for, record_read


def _sign_url(deps: DocumentDeps, org: uuid.UUID, sig: dict, ttl: int) -> str:
    token = links.sign(deps.link_key, links.SIGN, {"o": str(org), "d": str(sig["document_id"]), "s": str(sig["id"])},
                       int(time.time()) + ttl)
    return f"{deps.public_url.rstrip('/')}/sign/{token}"


async def request_signatures(deps: DocumentDeps, org: uuid.UUID, doc_id: str, signers: list[tuple[str, str]],
                             ttl_seconds: int) -> tuple[list[dict], dict]:
    v = Violations()
    parse_id(doc_id, "document_id", v)
    if not 1 <= len(signers) <= rules.MAX_SIGNERS:
        v.add("signers", f"name 1-{rules.MAX_SIGNERS} signers")
    refs: list[tuple[uuid.UUID | None, uuid.UUID | None]] = []
    for i, (contact_id, user_id) in enumerate(signers):
        if bool(contact_id) == bool(user_id):
            v.add(f"signers[{i}]", "set exactly one of contact_id and user_id")
            continue
        refs.append((parse_optional_id(contact_id, f"signers[{i}].contact_id", v),
                     parse_optional_id(user_id, f"signers[{i}].user_id", v)))
    ttl = rules.link_seconds(ttl_seconds, deps.max_link_seconds, "ttl_seconds", v)
    v.raise_if_any()
    async with deps.db.unit_of_work(org) as uow:
        doc = await document_for(uow, org, doc_id, rules.SHARE, field="document_id", for_update=True)
        out = []
        for i, (contact_id, user_id) in enumerate(refs):
            if contact_id is not None:
                person = await store.contact_signer(uow.conn, org, contact_id)
                if person is None:
                    raise InvalidArgument.field(f"signers[{i}].contact_id", "no such contact")
                name, email = person["name"], person["email"]
            else:
                if not await members_store.is_active(uow.conn, org, user_id) and user_id != caller_user():
                    raise InvalidArgument.field(f"signers[{i}].user_id", "is not an active member of the organization")
                name, email = str(user_id), None
            sig = await store.insert_signature(uow.conn, org, doc["id"], doc["current_version"],
                                               contact_id=contact_id, user_id=user_id, name=name, email=email,
                                               requested_by=caller_user())
            if sig is None:
                continue  # already asked for this version
            if contact_id is not None:
                sig["sign_url"] = _sign_url(deps, org, sig, ttl)
            out.append(sig)
        uow.audit("crm.document.request_signatures", "document", str(doc["id"]),
                  after={"version": doc["current_version"],
                         "signers": [str(s["contact_id"] or s["user_id"]) for s in out]})
        uow.publish("crm.document.signatures_requested", crm_events_pb2.DocumentSignatureEvent(
            document_id=str(doc["id"]), version=doc["current_version"], status="pending"),
            aggregate_type="document", aggregate_id=str(doc["id"]))
        return out, await store.get_document(uow.conn, org, doc["id"])


async def _record_signing(uow: UnitOfWork, org: uuid.UUID, doc: dict, sig: dict, intent: str, ip: str,
                          user_agent: str, by_user: uuid.UUID | None, actor: dict) -> dict:
    version = await store.version(uow.conn, org, doc["id"], sig["version_number"])
    signed = await store.record_signing(uow.conn, org, sig["id"], intent=intent, ip=ip, user_agent=user_agent,
                                        sha256=version["sha256"], by_user=by_user)
    uow.audit("crm.document.sign", "document", str(doc["id"]), ip_address=ip or None, **actor,
              after={"signature_id": str(sig["id"]), "version": sig["version_number"], "intent": intent,
                     "sha256": version["sha256"]})
    after = await store.get_document(uow.conn, org, doc["id"])
    uow.publish("crm.document.signed", crm_events_pb2.DocumentSignatureEvent(
        document_id=str(doc["id"]), version=sig["version_number"], signature_id=str(sig["id"]),
        status=after["signature_status"] if sig["version_number"] == after["current_version"] else "signed",
        sha256=version["sha256"]), aggregate_type="document", aggregate_id=str(doc["id"]))
    return signed


async def sign(deps: DocumentDeps, org: uuid.UUID, doc_id: str, intent: str) -> tuple[dict, dict]:
    v = Violations()
    parse_id(doc_id, "document_id", v)
    intent = rules.intent(intent, "intent", v)
    v.raise_if_any()
    ctx = context.current()
    me = caller_user()
    async with deps.db.unit_of_work(org) as uow:
        doc = await document_for(uow, org, doc_id, rules.VIEW, field="document_id")
        sig = await store.pending_signature(uow.conn, org, doc["id"], user_id=me) if me else None
        if sig is None:
            raise FailedPrecondition(f"you were not asked to sign document {doc_id} (or signed it)",
                                     reason="NOT_A_SIGNER")
        signed = await _record_signing(uow, org, doc, sig, intent, ctx.peer, ctx.user_agent, me, {})
        return signed, await store.get_document(uow.conn, org, doc["id"])


async def sign_by_link(deps: DocumentDeps, token: str, intent: str, ip: str, user_agent: str) -> dict | None:
    """A contact signs through their link; None for a bad or expired link or one already used."""
    v = Violations()
    intent = rules.intent(intent, "intent", v)
    v.raise_if_any()
    claims = links.verify(deps.link_key, links.SIGN, token)
    if claims is None:
        return None
    org, did, sid = uuid.UUID(claims["o"]), uuid.UUID(claims["d"]), uuid.UUID(claims["s"])
    async with deps.db.unit_of_work(org) as uow:
        doc = await store.get_document(uow.conn, org, did)
        sig = await store.pending_signature(uow.conn, org, did, signature_id=sid) if doc else None
        if sig is None:
            return None
        return await _record_signing(uow, org, doc, sig, intent, ip, user_agent, None,
                                     {"actor_id": str(sig["contact_id"]), "actor_kind": "contact"})


async def list_signatures(deps: DocumentDeps, org: uuid.UUID, doc_id: str) -> list[dict]:
    async with deps.db.unit_of_work(org) as uow:
        doc = await document_for(uow, org, doc_id, rules.VIEW, field="document_id")
        rows = await store.signatures(uow.conn, org, doc["id"])
    record_read(deps, "crm.document.signatures", doc["id"])
    return rows




async def signing_request(deps: DocumentDeps, token: str) -> dict | None:
    """What a contact's sign link asks them to sign; None for a bad, expired or used link."""
    claims = links.verify(deps.link_key, links.SIGN, token)
    if claims is None:
        return None
    org, did, sid = uuid.UUID(claims["o"]), uuid.UUID(claims["d"]), uuid.UUID(claims["s"])
    async with deps.db.unit_of_work(org) as uow:
        doc = await store.get_document(uow.conn, org, did)
        sig = await store.pending_signature(uow.conn, org, did, signature_id=sid) if doc else None
        if sig is None:
            return None
        version = await store.version(uow.conn, org, did, sig["version_number"])
        uow.audit("crm.document.open_sign_link", "document", str(did), actor_id=str(sig["contact_id"]),
                  actor_kind="contact", after={"signature_id": str(sid)})
    return {"document": doc["name"], "version": version["number"], "filename": version["filename"],
            "sha256": version["sha256"], "signer": sig["signer_name"]}
