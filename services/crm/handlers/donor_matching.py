"""Finding donors again: search, duplicate pairs, and merging two donors into one."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from givance.events.v1 import crm_events_pb2

from chassis import paging
from chassis.audit import ReadAudit
from chassis.db import Database, UnitOfWork
from chassis.errors import Aborted, InvalidArgument, NotFound, Violations
from services.crm.domain import donor_matching as rules
from services.crm.domain.donors import etag as etag_of
from services.crm.handlers.donors import _audited
from services.crm.store import donor_matching as store
from services.crm.store import donors as donor_store


def _page_key(token: str, fp: str, parts: int) -> list | None:
    """A decoded keyset (score, then `parts - 1` ids) or None for the first page."""
    key = paging.decode(token, fp)
    if key is None:
        return None
    try:
        if len(key) != parts:
            raise ValueError
        return [float(key[0]), *(uuid.UUID(k) for k in key[1:])]
    except (ValueError, TypeError):
        raise InvalidArgument.field("page_token", "is not a page token this method issued") from None


async def search_donors(db: Database, reads: ReadAudit, org: uuid.UUID, query: str, page_size: int,
                        page_token: str) -> tuple[list[dict], str]:
    v = Violations()
    q = rules.parse_query(query, "query", v)
    v.raise_if_any()
    size = paging.page_size(page_size, default=rules.SEARCH_PAGE_DEFAULT, maximum=rules.SEARCH_PAGE_MAX)
    fp = paging.fingerprint("search", q.text)
    after = _page_key(page_token, fp, 2)
    async with db.unit_of_work(org) as uow:
        rows = await store.search(uow.conn, org, query=q.text, digits=q.digits,
                                  threshold=rules.WORD_SIMILARITY_THRESHOLD, after=after, limit=size + 1)
    token = ""
    if len(rows) > size:
        rows = rows[:size]
        token = paging.encode([rows[-1]["score"], str(rows[-1]["id"])], fp)
    reads.record("crm.donor.search", "donor", "", after={"returned": len(rows)})  # giving totals: financial
    return rows, token


@dataclass(frozen=True)
class DuplicatePair:
    donor: dict
    duplicate: dict
    score: float
    reasons: list[str]


async def find_duplicates(db: Database, reads: ReadAudit, org: uuid.UUID, donor_id: str, page_size: int,
                          page_token: str) -> tuple[list[DuplicatePair], str]:
    did = _parse_id(donor_id, "donor_id") if donor_id else None
    size = paging.page_size(page_size)
    fp = paging.fingerprint("duplicates", donor_id)
    after = _page_key(page_token, fp, 3)
    async with db.unit_of_work(org) as uow:
        if did is not None:
            if await donor_store.get(uow.conn, org, did) is None:
                raise NotFound(f"donor {donor_id} not found")
            rows = await store.duplicates_of(uow.conn, org, did, after=after, limit=size + 1)
        else:  # the organization's pairs, kept in crm.duplicate_candidates
            rows = await store.candidate_page(uow.conn, org, after=after, limit=size + 1)
        token = ""
        if len(rows) > size:
            rows = rows[:size]
            last = rows[-1]
            token = paging.encode([last["score"], str(last["a_id"]), str(last["b_id"])], fp)
        donors = await store.donors_by_ids(uow.conn, org, list({i for r in rows for i in (r["a_id"], r["b_id"])}))
    pairs = [DuplicatePair(donor=donors[r["a_id"]], duplicate=donors[r["b_id"]], score=r["score"],
                           reasons=rules.reasons(r["same_email"], r["same_phone"], r["similar_name"]))
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
    survivor: dict
    moved_donations: int


async def merge_donors(db: Database, org: uuid.UUID, survivor_id: str, merged_id: str, survivor_etag: str,
                       merged_etag: str) -> MergeResult:
    v = Violations()
    sid = _parse_id(survivor_id, "survivor_id", v)
    mid = _parse_id(merged_id, "merged_id", v)
    if sid is not None and mid is not None:  # compared parsed: one id may be spelled two ways
        rules.check_merge_ids(str(sid), str(mid), v)
    v.raise_if_any()
    assert sid is not None and mid is not None
    async with db.unit_of_work(org) as uow:
        rows = await store.lock_any(uow.conn, org, [sid, mid])
        survivor, merged = rows.get(sid), rows.get(mid)
        rules.check_mergeable(survivor, merged, survivor_id, merged_id)
        for row, tag, field in ((survivor, survivor_etag, "survivor_etag"), (merged, merged_etag, "merged_etag")):
            if tag and tag != etag_of(row["version"]):
                raise Aborted(f"a donor changed since it was read ({field} is stale); read it again",
                              reason="ETAG_MISMATCH")
        moved = await store.move_donations(uow.conn, org, sid, mid)
        others = await store.move_references(uow.conn, org, sid, mid)
        await store.recompute_giving(uow.conn, org, sid, mid)
        after = await store.mark_merged(uow.conn, org, sid, mid)
        await store.forget_candidates(uow.conn, org, [mid])
        await store.refresh_candidates(uow.conn, org, [sid])
        uow.publish("crm.donor.merged", crm_events_pb2.DonorMergedEvent(survivor_id=str(sid), merged_id=str(mid)),
                    aggregate_type="donor", aggregate_id=str(sid))
        uow.audit("crm.donor.merge", "donor", str(sid),
                  before={"survivor": _audited(survivor), "merged_id": str(mid), "merged": _audited(merged)},
                  after={"survivor": _audited(after), "merged_into_id": str(sid), "moved_donations": moved,
                         "moved": others, "giving": after.get("giving") or []})
        return MergeResult(survivor=after, moved_donations=moved)


def _parse_id(value: str, field: str, v: Violations | None = None) -> uuid.UUID | None:
    problem = "is required" if not value else None
    if problem is None:
        try:
            return uuid.UUID(value)
        except ValueError:
            problem = "is not a valid id"
    if v is None:
        raise InvalidArgument.field(field, problem)
    v.add(field, problem)
    return None
