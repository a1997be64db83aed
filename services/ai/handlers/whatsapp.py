"""The WhatsApp assistant: its allowlist (admins), and the answer to a staff member's message.

comms receives a staff member's WhatsApp message (its signed webhook) and publishes
`comms.whatsapp.message_received`; ai's consumer calls `answer`:

- the number must be on the organization's allowlist here (ai's, the authority on who is
  answered and as whom), and its staff user still an active member (ai.members, a replica of
  identity's memberships: a suspended or removed member's number is refused at once); otherwise
  the exchange is stored as refused, nothing is read, nothing is sent;
- an allowlisted number is answered with the read tools only (search_donors, get_donor), through
  crm with ai's own tenant token narrowed to read permissions (`deps.assistant_metadata`: ai's
  platform principal, asked for crm.donors.read, crm.donations.read and crm.todos.read only), so
  whatever the question says, nothing can be written;
- the exchange is stored in whatsapp_queries and the reply published (`ai.whatsapp.reply_requested`,
  for comms to send) in the consumer's transaction: one exchange and one reply per inbound
  message, however often it is delivered.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict
from datetime import datetime
from typing import Any

from givance.events.v1 import ai_events_pb2

from chassis.db import Database, UnitOfWork
from chassis.errors import AlreadyExists, InvalidArgument, NotFound, ServiceError, Unavailable, Violations
from chassis.resource import Keyset, parse_id
from services.ai.domain import agents as agent_rules
from services.ai.domain import whatsapp as rules
from services.ai.domain.models import BUILTIN_MODEL
from services.ai.handlers.deps import Deps
from services.ai.store import members as members_store
from services.ai.store import whatsapp as store
from services.ai.store.whatsapp import Entry, Query

__all__ = ["Entry", "Query", "add_entry", "answer", "list_entries", "list_queries", "record_member",
           "remove_entry"]

REPLY_REQUESTED = "ai.whatsapp.reply_requested"


async def add_entry(db: Database, org: uuid.UUID, by: uuid.UUID | None, phone: str, user_id: str) -> Entry:
    v = Violations()
    clean = rules.phone(phone, "entry.phone", v)
    user = parse_id(user_id, "entry.user_id", v)
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        if not await members_store.is_active(uow.conn, org, user):
            raise InvalidArgument.field("entry.user_id", "is not an active member of the organization")
        entry = await store.add_entry(uow.conn, org, clean, user, by)
        if entry is None:
            raise AlreadyExists(f"{clean} is on the allowlist already", reason="WHATSAPP_NUMBER_LISTED")
        uow.audit("ai.whatsapp_allowlist.added", "whatsapp_allowlist", str(entry.id),
                  after={"phone": clean, "user_id": str(user)})
    return entry


async def list_entries(db: Database, org: uuid.UUID) -> list[Entry]:
    async with db.unit_of_work(org) as uow:
        return await store.entries(uow.conn, org)


async def remove_entry(db: Database, org: uuid.UUID, entry_id: str) -> None:
    eid = parse_id(entry_id, "id")
    async with db.unit_of_work(org) as uow:
        entry = await store.remove_entry(uow.conn, org, eid)
        if entry is None:
            raise NotFound(f"WhatsApp allowlist entry {entry_id} not found")
        uow.audit("ai.whatsapp_allowlist.removed", "whatsapp_allowlist", str(eid), before={"phone": entry.phone})


async def list_queries(db: Database, org: uuid.UUID, status: str | None, page_size: int,
                       page_token: str) -> tuple[list[Query], str]:
    page = Keyset.of(page_size, page_token, ("whatsapp_queries", status), (datetime.fromisoformat, uuid.UUID),
                     maximum=500)
    async with db.unit_of_work(org) as uow:
        rows = await store.page_queries(uow.conn, org, status, page.after, page.limit)
    return page.cut(rows, lambda q: (q.created_at, q.id))


async def answer(uow: UnitOfWork, deps: Deps, message_id: str, from_phone: str, text: str) -> str:
    """"answered", "refused" or "duplicate" (this inbound message has its exchange already)."""
    org = uow.tenant_id
    message_id, question = message_id[:200], text[: rules.QUESTION_MAX]
    if await store.query_for(uow.conn, org, message_id) is not None:
        return "duplicate"
    entry = await store.entry_for(uow.conn, org, from_phone)
    if entry is None or not await members_store.is_active(uow.conn, org, entry.user_id):
        await store.add_query(uow.conn, org, message_id=message_id, from_phone=from_phone[:20], status="refused",
                              query_text=question, query_type="refused")
        uow.audit("ai.whatsapp.refused", "whatsapp_query", message_id, after={"from_phone": from_phone})
        return "refused"
    started = time.perf_counter()
    results = await _look_up(deps, org, question)
    reply = rules.clip(agent_rules.answer(results) if results else rules.HELP)
    tools = [name for name, _, _ in results]
    query_id = await store.add_query(
        uow.conn, org, message_id=message_id, from_phone=from_phone, staff_id=entry.id, user_id=entry.user_id,
        status="answered", query_text=question, query_type=rules.query_type(tools), response_text=reply,
        tools=tools, model=BUILTIN_MODEL, execution_time_ms=int((time.perf_counter() - started) * 1000))
    if query_id is None:  # answered meanwhile by another delivery of the same message
        return "duplicate"
    uow.publish(REPLY_REQUESTED, ai_events_pb2.WhatsAppReplyRequestedEvent(
        query_id=str(query_id), inbound_message_id=message_id, to_phone=from_phone, text=reply),
        aggregate_type="whatsapp_query", aggregate_id=str(query_id))
    uow.audit("ai.whatsapp.answered", "whatsapp_query", str(query_id),
              after={"user_id": str(entry.user_id), "tools": tools})
    return "answered"


async def _look_up(deps: Deps, org: uuid.UUID, question: str) -> list[tuple[str, dict[str, str], Any]]:
    """The read tools' calls and results for the question (the built-in assistant's plan)."""
    call = rules.plan(question)
    if call is None:
        return []
    if deps.assistant_metadata is None:
        raise RuntimeError("ai's WhatsApp assistant needs ai's service principal (AI_PRINCIPAL_CLIENT_ID)")
    metadata = await deps.assistant_metadata(org)
    name, args = call
    results: list[tuple[str, dict[str, str], Any]] = []
    try:
        if name == "search_donors":
            found = await deps.crm.search_donors(metadata, args["query"], limit=5)
            results.append((name, args, found))
            if len(found) != 1:
                return results
            args = {"donor_id": found[0]["id"]}
        results.append(("get_donor", args, await _donor(deps, metadata, args["donor_id"])))
    except NotFound:
        results.append(("search_donors", {"query": args.get("donor_id", "")}, []))
    except ServiceError as exc:
        if isinstance(exc, Unavailable):
            raise  # crm is down: the consumer retries the message
        results = [("search_donors", {"query": args.get("query", args.get("donor_id", ""))}, [])]
    return results


async def _donor(deps: Deps, metadata, donor_id: str) -> dict[str, Any]:
    facts = await deps.crm.donor_facts(metadata, donor_id)
    return {"name": facts.name, "city": facts.city, "journey_stage": facts.journey_stage,
            "gifts": [asdict(g) for g in facts.gifts], "open_todos": facts.open_todos}


async def record_member(uow: UnitOfWork, organization_id: str, user_id: str, *, active: bool,
                        event_time: datetime) -> bool:
    """One of identity's membership events of uow's tenant, into ai.members."""
    if uuid.UUID(organization_id) != uow.tenant_id:
        raise ValueError(f"the event's organization {organization_id} is not its tenant {uow.tenant_id}")
    return await members_store.record(uow.conn, uow.tenant_id, uuid.UUID(user_id), active=active,
                                      event_time=event_time)
