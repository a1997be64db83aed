"""Client and contact use cases: create, get, list, update, delete; merge duplicate contacts."""

from __future__ import annotations

import uuid
from typing import Any

from givance.events.v1 import crm_events_pb2

from chassis import context
from chassis.crypto import Keyring
from chassis.db import Database, UnitOfWork
from chassis.errors import FailedPrecondition, InvalidArgument, Violations
from chassis.resource import (
    Keyset,
    check_request_id,
    current,
    expand_mask,
    found,
    parse_id,
    parse_optional_id,
)
from services.crm.domain import clients as rules
from services.crm.store import clients as store
from services.crm.store import members as members_store


def caller_user() -> uuid.UUID | None:
    """The calling user's id (None for a service account or no caller)."""
    ctx = context.current_or_none()
    principal = ctx.principal if ctx else None
    if principal is None or principal.kind != "user":
        return None
    try:
        return uuid.UUID(principal.subject)
    except ValueError:
        return None


def masked_tax_id(row: dict[str, Any]) -> str:
    return rules.mask(row.get("tax_id_last4"))


def _tax_aad(org: uuid.UUID, client_id: uuid.UUID) -> bytes:
    return f"crm.clients.tax_id:{org}:{client_id}".encode()


def _audited(row: dict[str, Any]) -> dict[str, Any]:
    out = {c: row.get(c) for c in rules.CLIENT_COLUMNS}
    out["tax_id"] = rules.mask(row.get("tax_id_last4"))
    return out


async def _check_manager(uow: UnitOfWork, org: uuid.UUID, manager: str | None, current_manager: Any,
                         path: str) -> None:
    """A new manager must be an active member (or the caller); the current one is kept."""
    if not manager or str(current_manager or "") == manager:
        return
    mid = uuid.UUID(manager)
    if mid == caller_user():
        return
    if not await members_store.is_active(uow.conn, org, mid):
        raise InvalidArgument.field(path, rules.NOT_AN_ACTIVE_MEMBER)


def _client_event(row: dict[str, Any], changed: list[str] | None = None) -> crm_events_pb2.ClientChangedEvent:
    return crm_events_pb2.ClientChangedEvent(
        client_id=str(row["id"]), name=row["name"], client_number=row["client_number"] or "", status=row["status"],
        assigned_manager_id=str(row["assigned_manager"] or ""), changed_fields=changed or [])


async def create_client(db: Database, keyring: Keyring, org: uuid.UUID, raw: dict[str, Any],
                        request_id: str) -> dict[str, Any]:
    v = Violations()
    check_request_id(request_id, v)
    clean = rules.normalize_client(raw, "client", v)
    tax_id = rules.check_tax_id(raw.get("tax_id", ""), "client.tax_id", v)
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        if request_id:
            earlier = await store.client_by_request_id(uow.conn, org, request_id)
            if earlier is not None:
                return found(await store.get_client(uow.conn, org, earlier), "client", str(earlier))
        await _check_manager(uow, org, clean["assigned_manager"], None, "client.assigned_manager_id")
        client_id = uuid.uuid4()
        sealed = keyring.seal(tax_id.encode(), _tax_aad(org, client_id)) if tax_id else None
        last4 = rules.tax_id_last4(tax_id) if tax_id else None
        if not await store.insert_client(uow.conn, org, client_id, clean, sealed, last4, caller_user(),
                                         request_id or None):
            client_id = await store.client_by_request_id(uow.conn, org, request_id)
            return found(await store.get_client(uow.conn, org, client_id), "client", str(client_id))
        row = await store.get_client(uow.conn, org, client_id)
        uow.audit("crm.client.create", "client", str(client_id), after=_audited(row))
        uow.publish("crm.client.created", _client_event(row), aggregate_type="client", aggregate_id=str(client_id))
        return row


async def get_client(db: Database, org: uuid.UUID, client_id: str) -> dict[str, Any]:
    cid = parse_id(client_id, "id")
    async with db.unit_of_work(org) as uow:
        return found(await store.get_client(uow.conn, org, cid), "client", client_id)


async def list_clients(db: Database, org: uuid.UUID, *, status: str | None, client_type: str | None,
                       manager: str, query: str, page_size: int, page_token: str) -> tuple[list[dict], str]:
    v = Violations()
    filters = {"status": status, "client_type": client_type,
               "assigned_manager": parse_optional_id(manager, "assigned_manager_id", v)}
    words = rules.search_words(query, "query", v)
    v.raise_if_any()
    page = Keyset.of(page_size, page_token, ("clients", *(str(filters[k] or "") for k in sorted(filters)), *words),
                     (str, uuid.UUID))
    async with db.unit_of_work(org) as uow:
        rows = await store.page_clients(uow.conn, org, filters=filters, words=words, after=page.after,
                                        limit=page.limit)
    return page.cut(rows, lambda r: (r["name"].lower(), r["id"]))


def _raw_of_client(row: dict[str, Any]) -> dict[str, Any]:
    """A stored client as the API's raw fields (what an update starts from)."""
    raw = {path: row.get(cols[0]) for path, cols in rules.CLIENT_PATHS.items() if path != "tax_id"}
    raw["assigned_manager_id"] = str(row["assigned_manager"] or "")
    raw["fiscal_year_end_month"] = row["fiscal_year_end_month"] or 0
    raw["credit_limit"] = ((row["credit_limit"], row["credit_limit_currency"])
                           if row["credit_limit"] is not None else None)
    return raw


async def update_client(db: Database, keyring: Keyring, org: uuid.UUID, client_id: str, etag: str,
                        patch: dict[str, Any], mask: list[str]) -> dict[str, Any]:
    cid = parse_id(client_id, "client.id")
    v = Violations()
    paths = expand_mask(mask, list(rules.CLIENT_PATHS), "update_mask", v)
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        row = current(await store.get_client(uow.conn, org, cid, for_update=True), "client", client_id, etag,
                      "client.etag")
        raw = _raw_of_client(row)
        problems = {k: d for k, d in patch.get("problems", {}).items() if k.split(".")[1] in paths}
        raw.update({p: patch.get(p) for p in paths if p != "tax_id"}, problems=problems)
        clean = rules.normalize_client(raw, "client", v)
        tax = None
        if "tax_id" in paths:
            tax_id = rules.check_tax_id(patch.get("tax_id", ""), "client.tax_id", v)
            tax = ((keyring.seal(tax_id.encode(), _tax_aad(org, cid)), rules.tax_id_last4(tax_id))
                   if tax_id else (None, None))
        v.raise_if_any()
        await _check_manager(uow, org, clean["assigned_manager"], row["assigned_manager"],
                             "client.assigned_manager_id")
        await store.update_client(uow.conn, org, cid, clean, tax)
        updated = await store.get_client(uow.conn, org, cid)
        before, after = _audited(row), _audited(updated)
        changed = [k for k in after if after[k] != before[k]]
        uow.audit_change("crm.client.update", "client", str(cid), before, after)
        uow.publish("crm.client.updated", _client_event(updated, changed), aggregate_type="client",
                    aggregate_id=str(cid))
        return updated


async def reveal_tax_id(db: Database, keyring: Keyring, org: uuid.UUID, client_id: uuid.UUID) -> str:
    """The tax id in clear, for the service's own use (tests of the sealing; never an RPC)."""
    async with db.unit_of_work(org) as uow:
        sealed = await store.sealed_tax_id(uow.conn, org, client_id)
    return keyring.open(sealed, _tax_aad(org, client_id)).decode() if sealed else ""


async def delete_client(db: Database, org: uuid.UUID, client_id: str, etag: str) -> None:
    cid = parse_id(client_id, "id")
    async with db.unit_of_work(org) as uow:
        row = current(await store.get_client(uow.conn, org, cid, for_update=True), "client", client_id, etag, "etag")
        if await store.has_live_contacts(uow.conn, org, cid):
            raise FailedPrecondition(f"client {client_id} still has contacts; delete or move them first",
                                     reason="CLIENT_HAS_CONTACTS")
        await store.delete_client(uow.conn, org, cid)
        uow.audit("crm.client.delete", "client", str(cid), before=_audited(row))
        uow.publish("crm.client.deleted", _client_event(row), aggregate_type="client", aggregate_id=str(cid))


# -- contacts ----------------------------------------------------------------------------------

_CONTACT_AUDITED = store.CONTACT_COLUMNS


def _contact_audited(row: dict[str, Any]) -> dict[str, Any]:
    return {c: row.get(c) for c in _CONTACT_AUDITED}


def _contact_event(row: dict[str, Any], changed: list[str] | None = None) -> crm_events_pb2.ContactChangedEvent:
    return crm_events_pb2.ContactChangedEvent(contact_id=str(row["id"]), client_id=str(row["client_id"] or ""),
                                              is_primary=row["is_primary"], changed_fields=changed or [])


async def _check_client(uow: UnitOfWork, org: uuid.UUID, client_id: str | None, path: str) -> None:
    if client_id and not await store.client_is_live(uow.conn, org, uuid.UUID(client_id)):
        raise InvalidArgument.field(path, "no such client")


async def create_contact(db: Database, org: uuid.UUID, raw: dict[str, Any], request_id: str) -> dict[str, Any]:
    v = Violations()
    check_request_id(request_id, v)
    clean = rules.normalize_contact(raw, "contact", v)
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        if request_id:
            earlier = await store.contact_by_request_id(uow.conn, org, request_id)
            if earlier is not None:
                return found(await store.get_contact(uow.conn, org, earlier), "contact", str(earlier))
        await _check_client(uow, org, clean["client_id"], "contact.client_id")
        contact_id = uuid.uuid4()
        if not await store.insert_contact(uow.conn, org, contact_id, clean, caller_user(), request_id or None):
            contact_id = await store.contact_by_request_id(uow.conn, org, request_id)
            return found(await store.get_contact(uow.conn, org, contact_id), "contact", str(contact_id))
        row = await store.get_contact(uow.conn, org, contact_id)
        uow.audit("crm.contact.create", "contact", str(contact_id), after=_contact_audited(row))
        uow.publish("crm.contact.created", _contact_event(row), aggregate_type="contact",
                    aggregate_id=str(contact_id))
        return row


async def get_contact(db: Database, org: uuid.UUID, contact_id: str) -> dict[str, Any]:
    cid = parse_id(contact_id, "id")
    async with db.unit_of_work(org) as uow:
        return found(await store.get_contact(uow.conn, org, cid), "contact", contact_id)


async def list_contacts(db: Database, org: uuid.UUID, *, client_id: str, query: str, tag: str, page_size: int,
                        page_token: str) -> tuple[list[dict], str]:
    v = Violations()
    cid = parse_optional_id(client_id, "client_id", v)
    words = rules.search_words(query, "query", v)
    tag = tag.strip()
    if len(tag) > rules.MAX_TAG:
        v.add("tag", f"must be at most {rules.MAX_TAG} characters")
    v.raise_if_any()
    page = Keyset.of(page_size, page_token, ("contacts", str(cid or ""), tag, *words), (str, str, uuid.UUID))
    async with db.unit_of_work(org) as uow:
        rows = await store.page_contacts(uow.conn, org, client_id=cid, tag=tag or None, words=words,
                                         after=page.after, limit=page.limit)
    return page.cut(rows, lambda r: (r["last_name"].lower(), r["first_name"].lower(), r["id"]))


def _raw_of_contact(row: dict[str, Any]) -> dict[str, Any]:
    raw = {c: row.get(c) for c in store.CONTACT_COLUMNS}
    raw["client_id"] = str(row["client_id"] or "")
    return raw


async def update_contact(db: Database, org: uuid.UUID, contact_id: str, etag: str, patch: dict[str, Any],
                         mask: list[str]) -> dict[str, Any]:
    cid = parse_id(contact_id, "contact.id")
    v = Violations()
    paths = expand_mask(mask, list(rules.CONTACT_PATHS), "update_mask", v)
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        row = current(await store.get_contact(uow.conn, org, cid, for_update=True), "contact", contact_id, etag,
                      "contact.etag")
        raw = _raw_of_contact(row)
        raw.update({p: patch.get(p) for p in paths})
        clean = rules.normalize_contact(raw, "contact", v)
        v.raise_if_any()
        if "client_id" in paths and clean["client_id"] != raw_client(row):
            await _check_client(uow, org, clean["client_id"], "contact.client_id")
        await store.update_contact(uow.conn, org, cid, clean)
        updated = await store.get_contact(uow.conn, org, cid)
        before, after = _contact_audited(row), _contact_audited(updated)
        uow.audit_change("crm.contact.update", "contact", str(cid), before, after)
        uow.publish("crm.contact.updated", _contact_event(updated, [k for k in after if after[k] != before[k]]),
                    aggregate_type="contact", aggregate_id=str(cid))
        return updated


def raw_client(row: dict[str, Any]) -> str | None:
    return str(row["client_id"]) if row["client_id"] else None


async def delete_contact(db: Database, org: uuid.UUID, contact_id: str, etag: str) -> None:
    cid = parse_id(contact_id, "id")
    async with db.unit_of_work(org) as uow:
        row = current(await store.get_contact(uow.conn, org, cid, for_update=True), "contact", contact_id, etag,
                      "etag")
        await store.delete_contact(uow.conn, org, cid)
        uow.audit("crm.contact.delete", "contact", str(cid), before=_contact_audited(row))
        uow.publish("crm.contact.deleted", _contact_event(row), aggregate_type="contact", aggregate_id=str(cid))


async def merge_contacts(db: Database, org: uuid.UUID, survivor_id: str, duplicate_id: str) -> dict[str, Any]:
    v = Violations()
    sid = parse_id(survivor_id, "survivor_id", v)
    did = parse_id(duplicate_id, "duplicate_id", v)
    if sid is not None and sid == did:
        v.add("duplicate_id", "must name another contact than survivor_id")
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        # Locked in id order, so two merges of the same pair cannot deadlock.
        rows = {}
        for cid in sorted((sid, did)):
            rows[cid] = await store.get_contact(uow.conn, org, cid, for_update=True)
        survivor = found(rows[sid], "contact", survivor_id)
        duplicate = found(rows[did], "contact", duplicate_id)
        merged = rules.merge_contacts(survivor, duplicate)
        await store.delete_contact(uow.conn, org, did, merged_into=sid)  # frees its primary slot first
        await store.update_contact(uow.conn, org, sid, merged)
        updated = await store.get_contact(uow.conn, org, sid)
        uow.audit("crm.contact.merge", "contact", str(sid), before=_contact_audited(survivor),
                  after={**_contact_audited(updated), "merged_contact_id": str(did)})
        uow.publish("crm.contact.merged", crm_events_pb2.ContactMergedEvent(survivor_id=str(sid),
                                                                            duplicate_id=str(did)),
                    aggregate_type="contact", aggregate_id=str(sid))
        return updated


