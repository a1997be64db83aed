"""Donor research (person_research): asked for over the API, done on a work queue.

ResearchDonor reads the donor's facts from crm with the caller's own token (so nobody researches
a donor they cannot see), writes a PENDING version and, in the same transaction, the job
(ai.research.requested through the outbox). The job (consumers/research.py) has no caller: it
reads the donor again, as crm has them when it runs, with ai's own tenant token (a platform
service principal's, chassis.tenant_tokens), leaving out what crm refused the requester (their
gifts or todos), so it never holds more than the requester could see; a donor deleted meanwhile
fails the version; without a token, or with crm unreachable, it works from what the requester
read. Then it searches the
web when a search provider is configured, fetches the top pages with the safe fetcher, and has
the organization's writer summarise them with every claim linked to its source. Without a
search provider it researches from the organization's own records and says so.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import asdict

from givance.events.v1 import ai_events_pb2

from chassis.db import Database, UnitOfWork
from chassis.errors import NotFound, ServiceError, Violations
from chassis.resource import Keyset, check_request_id, parse_id
from services.ai.domain.facts import DonorFacts, Source
from services.ai.handlers import usage, writer
from services.ai.handlers.deps import Deps
from services.ai.store import research as store
from services.ai.store import settings as settings_store
from services.ai.store.research import Research

log = logging.getLogger(__name__)
JOB = "ai.research.requested"


async def request(db: Database, deps: Deps, org: uuid.UUID, user: uuid.UUID | None, metadata, donor_id: str,
                  request_id: str) -> Research:
    v = Violations()
    donor = parse_id(donor_id, "donor_id", v)
    check_request_id(request_id, v)
    v.raise_if_any()
    if request_id:
        async with db.unit_of_work(org) as uow:
            done = await store.by_request_id(uow.conn, org, request_id)
        if done is not None:
            return done
    async with db.unit_of_work(org) as uow:
        await usage.check_budget(uow, org)
    facts = await deps.crm.donor_facts(metadata, str(donor))  # NOT_FOUND for another tenant's donor
    async with db.unit_of_work(org) as uow:
        row = await store.insert(uow.conn, org, donor, facts.to_json(), user, request_id or None)
        uow.publish(JOB, ai_events_pb2.DonorResearchRequestedEvent(research_id=str(row.id), donor_id=str(donor)),
                    aggregate_type="person_research", aggregate_id=str(row.id))
        uow.audit("ai.research.requested", "person_research", str(row.id), after={"donor_id": str(donor)})
    return row


async def get(db: Database, org: uuid.UUID, donor_id: str, version: int) -> Research:
    from chassis.errors import InvalidArgument

    donor = parse_id(donor_id, "donor_id")
    if version < 0:
        raise InvalidArgument.field("version", "must not be negative")
    async with db.unit_of_work(org) as uow:
        row = await store.for_donor(uow.conn, org, donor, version)
    if row is None:
        raise NotFound(f"no research on donor {donor_id}" + (f" at version {version}" if version else ""))
    return row


async def list_versions(db: Database, org: uuid.UUID, donor_id: str, page_size: int,
                        page_token: str) -> tuple[list[Research], str]:
    donor = parse_id(donor_id, "donor_id")
    page = Keyset.of(page_size, page_token, ("research", str(donor)), (int,), default=20, maximum=100)
    async with db.unit_of_work(org) as uow:
        rows = await store.page(uow.conn, org, donor, page.after[0] if page.after else None, page.limit)
    return page.cut(rows, lambda r: (r.version,))


async def run(uow: UnitOfWork, deps: Deps, research_id: uuid.UUID) -> None:
    """The job: idempotent (a version already finished is left alone)."""
    org = uow.tenant_id
    row = await store.get(uow.conn, org, research_id, for_update=True)
    if row is None or row.status != "pending":
        return
    s = await settings_store.get(uow.conn, org)
    try:
        facts = await current_facts(deps, org, DonorFacts.from_json(row.donor_facts))
        await usage.check_budget(uow, org)
        sources, basis = await gather(deps, facts)
        result, completion = await writer.research(deps, s, facts, sources)
    except Exception as exc:  # the job's failure is the version's result, not a poison message
        if not _expected(exc):
            raise
        await _finish(uow, row, status="failed", basis=None, summary="", claims=[], sources=[], model="",
                      error=str(exc)[:1000])
        return
    if completion is not None:
        await usage.record(uow, org, completion, "research")
    await _finish(uow, row, status="completed", basis=basis, summary=result.summary,
                  claims=[{"text": c.text, "source_ids": list(c.source_ids)} for c in result.claims],
                  sources=[{"id": s.id, "url": s.url, "title": s.title} for s in sources], model=result.model,
                  error="")


async def current_facts(deps: Deps, org: uuid.UUID, requested: DonorFacts) -> DonorFacts:
    """The donor as crm has them now, read with ai's own tenant token, less what the requester
    was refused; `requested` (what the requester read) when there is no token or crm cannot
    answer. A donor gone since (NOT_FOUND) is raised."""
    if deps.tenant_metadata is None:
        return requested
    try:
        facts = await deps.crm.donor_facts(await deps.tenant_metadata(org), requested.donor_id)
    except NotFound:
        raise
    except ServiceError as exc:
        log.warning("research: crm not read with ai's tenant token (%s); using what the requester read", exc.message)
        return requested
    if "gifts" in requested.withheld:
        facts.gifts = []
    if "open_todos" in requested.withheld:
        facts.open_todos = []
    facts.withheld = sorted(set(facts.withheld) | set(requested.withheld))
    return facts


def _expected(exc: Exception) -> bool:
    return isinstance(exc, ServiceError)


async def _finish(uow: UnitOfWork, row: Research, **fields) -> None:
    done = await store.finish(uow.conn, row.organization_id, row.id, **fields)
    uow.publish("ai.research.completed", ai_events_pb2.DonorResearchCompletedEvent(
        research_id=str(done.id), donor_id=str(done.donor_id), version=done.version, status=done.status),
        aggregate_type="person_research", aggregate_id=str(done.id))


async def gather(deps: Deps, facts: DonorFacts) -> tuple[list[Source], str]:
    """The sources: web pages when a search provider is configured, else the organization's record."""
    if deps.search is None:
        return [Source("s1", f"givance:crm/donors/{facts.donor_id}", "The organization's own record")], \
            "organization_data"
    query = " ".join(p for p in (facts.first_name, facts.last_name, facts.city) if p)
    try:
        results = await deps.search.search(query, count=max(deps.max_pages * 2, 5))
    except Exception as exc:  # noqa: BLE001  the search is down: the organization's own data, and it says so
        log.warning("research: web search failed (%s); researching from the organization's own data", exc)
        results = []
    sources: list[Source] = []
    for r in results:
        if len(sources) >= deps.max_pages:
            break
        text = r.snippet
        title = r.title
        try:
            page = await deps.fetcher.fetch(r.url)
            text, title = page.text or text, page.title or title
        except Exception as exc:  # noqa: BLE001  a page that cannot be fetched keeps its search snippet
            log.info("research: %s not fetched (%s)", r.url, exc)
        sources.append(Source(f"s{len(sources) + 1}", r.url, title, text[:20_000]))
    if not sources:
        return [Source("s1", f"givance:crm/donors/{facts.donor_id}", "The organization's own record")], \
            "organization_data"
    return sources, "web"


def facts_of(row: Research) -> dict:
    return asdict(DonorFacts.from_json(row.donor_facts))
