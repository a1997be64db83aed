"""Finding donors again: search, duplicate pairs, and merging two donors into one."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from givance.events.v1 import crm_events_pb2

from chassis.audit import ReadAudit
from chassis.db import Database, UnitOfWork
from chassis.errors import NotFound, Violations
from chassis.resource import Keyset, check_etag, parse_id, parse_optional_id
from services.crm.domain import donor_matching as rules
from services.crm.handlers import households, soft_credits
from services.crm.handlers.donors import audited
from services.crm.store import donor_matching as store
from services.crm.store import donors as donor_store
from services.crm.store.donors import Donor


async def search_donors(db: Database, reads: ReadAudit, org: uuid.UUID, query: str, page_size: int,
                        page_token: str) -> tuple[list[Donor], str]:
    v = Violations()
    q = rules.parse_query(query, "query", v)
    v.raise_if_any()
    page = Keyset.of(page_size, page_token, ("search", q.text), store.SEARCH_KEY_PARSERS,
                     default=rules.SEARCH_PAGE_DEFAULT, maximum=rules.SEARCH_PAGE_MAX)
    async with db.unit_of_work(org) as uow:
        rows = await store.search(uow.conn, org, query=q.text, digits=q.digits,
                                  threshold=rules.WORD_SIMILARITY_THRESHOLD, after=page.after, limit=page.limit)
    rows, token = page.cut(rows, store.search_key)
    reads.record("crm.donor.search", "donor", "", after={"returned": len(rows)})  # giving totals: financial
    return rows, token


@dataclass(frozen=True)
class DuplicatePair:
    donor: Donor
    duplicate: Donor
    score: float
    reasons: list[str]


async def find_duplicates(db: Database, reads: ReadAudit, org: uuid.UUID, donor_id: str, page_size: int,
                          page_token: str) -> tuple[list[DuplicatePair], str]:
    did = parse_optional_id(donor_id, "donor_id")
    page = Keyset.of(page_size, page_token, ("duplicates", donor_id), (float, uuid.UUID, uuid.UUID))
    async with db.unit_of_work(org) as uow:
        if did is not None:
            if await donor_store.get(uow.conn, org, did) is None:
                raise NotFound(f"donor {donor_id} not found")
            rows = await store.duplicates_of(uow.conn, org, did, after=page.after, limit=page.limit)
        else:  # the organization's pairs, kept in crm.duplicate_candidates
            rows = await store.candidate_page(uow.conn, org, after=page.after, limit=page.limit)
        rows, token = page.cut(rows, lambda r: (r.score, r.a_id, r.b_id))
        donors = await store.donors_by_ids(uow.conn, org, list({i for r in rows for i in (r.a_id, r.b_id)}))
    pairs = [DuplicatePair(donor=donors[r.a_id], duplicate=donors[r.b_id], score=r.score,
                           reasons=rules.reasons(r.same_email, r.same_phone, r.similar_name))
             for r in rows]
    reads.record("crm.donor.duplicates", "donor", donor_id, after={"returned": len(pairs)})
    return pairs, token


# An import's batch carries up to this many donors; refreshed in slices of this size.
_REFRESH_SLICE = 500


async def refresh_imported(uow: UnitOfWork, org: uuid.UUID, donor_ids: list[str]) -> int:
    """The duplicate pairs of donors an import created or updated (crm.donors.imported),
    recomputed from their current rows. Returns how many pairs they now have."""
    ids = sorted({uuid.UUID(i) for i in donor_ids})
    pairs = 0
    await store.refresh_statistics_if_stale(uow.conn)
    for start in range(0, len(ids), _REFRESH_SLICE):
        pairs += await store.refresh_candidates(uow.conn, org, ids[start:start + _REFRESH_SLICE])
    return pairs


@dataclass(frozen=True)
class MergeResult:
    survivor: Donor
    moved_donations: int


async def merge_donors(db: Database, org: uuid.UUID, survivor_id: str, merged_id: str, survivor_etag: str,
                       merged_etag: str) -> MergeResult:
    v = Violations()
    sid = parse_id(survivor_id, "survivor_id", v)
    mid = parse_id(merged_id, "merged_id", v)
    if sid is not None and mid is not None:  # compared parsed: one id may be spelled two ways
        rules.check_merge_ids(str(sid), str(mid), v)
    v.raise_if_any()
    assert sid is not None and mid is not None
    async with db.unit_of_work(org) as uow:
        rows = await store.lock_any(uow.conn, org, [sid, mid])
        survivor, merged = rows.get(sid), rows.get(mid)
        rules.check_mergeable(survivor, merged, survivor_id, merged_id)
        check_etag(survivor_etag, survivor.version, "donor", "survivor_etag")
        check_etag(merged_etag, merged.version, "donor", "merged_etag")
        moved = await store.move_donations(uow.conn, org, sid, mid)
        others = await store.move_references(uow.conn, org, sid, mid)
        await store.recompute_giving(uow.conn, org, sid, mid)
        await soft_credits.after_merge(uow, org, sid, mid)
        after = await store.mark_merged(uow.conn, org, sid, mid)
        await households.donor_gone(uow, org, mid, "merged")
        await store.forget_candidates(uow.conn, org, [mid])
        await store.refresh_candidates(uow.conn, org, [sid])
        uow.publish("crm.donor.merged", crm_events_pb2.DonorMergedEvent(survivor_id=str(sid), merged_id=str(mid)),
                    aggregate_type="donor", aggregate_id=str(sid))
        uow.audit("crm.donor.merge", "donor", str(sid),
                  before={"survivor": audited(survivor), "merged_id": str(mid), "merged": audited(merged)},
                  after={"survivor": audited(after), "merged_into_id": str(sid), "moved_donations": moved,
                         "moved": others, "giving": [g._asdict() for g in after.giving or []]})
        return MergeResult(survivor=after, moved_donations=moved)

