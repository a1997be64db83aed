"""Journey use cases: seed, read and edit the graph; move donors along it; their history."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from givance.events.v1 import crm_events_pb2

from chassis import paging
from chassis.convert import timestamp
from chassis.db import Database, UnitOfWork
from chassis.errors import Aborted, InvalidArgument, NotFound, Violations
from services.crm.domain import journeys as rules
from services.crm.domain.donors import etag as donor_etag
from services.crm.domain.journeys import DEFAULT_JOURNEY
from services.crm.store import donors as donor_store
from services.crm.store import journeys as store


async def seed_default_journey(uow: UnitOfWork) -> bool:
    """Give a new organization the default donor journey (once)."""
    assert uow.tenant_id is not None
    return await store.insert_if_absent(uow.conn, uow.tenant_id, DEFAULT_JOURNEY)


@dataclass(frozen=True)
class Journey:
    graph: dict
    version: int

    @property
    def etag(self) -> str:
        return rules.etag(self.version)


async def get_journey(db: Database, org: uuid.UUID) -> Journey:
    async with db.unit_of_work(org) as uow:
        stored = await store.get_versioned(uow.conn, org)
    if stored is None:
        return Journey(DEFAULT_JOURNEY, rules.DEFAULT_VERSION)
    return Journey(*stored)


async def update_journey(db: Database, org: uuid.UUID, stages: list[dict], etag: str, mask: list[str]) -> Journey:
    v = Violations()
    rules.check_mask(mask, "update_mask", v)
    graph = rules.normalize_graph(stages, "journey", v)  # "stages" is the only writable field
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        # The default journey becomes a stored row (version 1) first, so every edit locks a row.
        await store.insert_if_absent(uow.conn, org, DEFAULT_JOURNEY)
        old, version = await store.get_versioned(uow.conn, org, lock="FOR UPDATE")
        if etag and etag != rules.etag(version):
            raise Aborted("the journey changed since it was read (journey.etag is stale); read it again",
                          reason="ETAG_MISMATCH")
        removed = rules.removed_stages(old, graph)
        if removed:
            rules.check_stages_in_use(await store.donors_in_stages(uow.conn, org, sorted(removed)))
        new_version = await store.replace_graph(uow.conn, org, graph)
        uow.audit("crm.journey.update", "journey", str(org), before=old, after=graph)
        return Journey(graph, new_version)


@dataclass(frozen=True)
class Move:
    donor: dict
    change: dict


def _donor_id(value: str, v: Violations) -> uuid.UUID | None:
    if not value:
        v.add("donor_id", "is required")
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        v.add("donor_id", "is not a valid id")
        return None


async def move_donor_stage(db: Database, org: uuid.UUID, donor_id: str, to_stage: str, reason: str, etag: str,
                           changed_by: str) -> Move:
    v = Violations()
    did = _donor_id(donor_id, v)
    async with db.unit_of_work(org) as uow:
        # FOR SHARE: an edit of the journey waits for this move (and sees its donor in the stage).
        stored = await store.get_versioned(uow.conn, org, lock="FOR SHARE")
        graph = stored[0] if stored else DEFAULT_JOURNEY
        reason = rules.check_move_request(to_stage, reason, graph, v)
        v.raise_if_any()
        assert did is not None
        to_stage = to_stage.strip()
        donor = await donor_store.get_for_update(uow.conn, org, did)
        if donor is None:
            raise NotFound(f"donor {donor_id} not found")
        if etag and etag != donor_etag(donor["version"]):
            raise Aborted("the donor changed since it was read (etag is stale); read it again", reason="ETAG_MISMATCH")
        current = donor["journey_stage"]
        rules.check_move(graph, current, to_stage)
        change = await store.move_donor(uow.conn, org, did, uuid.uuid4(), current, to_stage, reason, changed_by)
        uow.publish(
            "crm.donor.stage_changed",
            crm_events_pb2.DonorStageChangedEvent(
                change_id=str(change["id"]), donor_id=str(did), from_stage=current or "", to_stage=to_stage,
                reason=reason, changed_by=changed_by, change_time=timestamp(change["changed_at"])),
            aggregate_type="donor", aggregate_id=str(did),
        )
        uow.audit("crm.donor.move_stage", "donor", str(did), before={"journey_stage": current},
                  after={"journey_stage": to_stage, "reason": reason, "change_id": str(change["id"])})
        after = await donor_store.get(uow.conn, org, did)
        return Move(donor=after, change=change)


async def list_stage_history(db: Database, org: uuid.UUID, donor_id: str, page_size: int,
                             page_token: str) -> tuple[list[dict], str]:
    v = Violations()
    did = _donor_id(donor_id, v)
    v.raise_if_any()
    size = paging.page_size(page_size)
    fp = paging.fingerprint("stage-history", str(did))
    after = paging.decode(page_token, fp)
    if after is not None:
        try:
            after = [datetime.fromisoformat(after[0]), uuid.UUID(after[1])]
        except (ValueError, TypeError, IndexError):
            raise InvalidArgument.field("page_token", "is not a page token this method issued") from None
    async with db.unit_of_work(org) as uow:
        if await donor_store.get(uow.conn, org, did) is None:
            raise NotFound(f"donor {donor_id} not found")
        rows = await store.history_page(uow.conn, org, did, after=after, limit=size + 1)
    token = ""
    if len(rows) > size:
        rows = rows[:size]
        token = paging.encode([rows[-1]["changed_at"].isoformat(), str(rows[-1]["id"])], fp)
    return rows, token
