"""Journey use cases: seed, read and edit the graph; move donors along it; their history."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from givance.events.v1 import crm_events_pb2

from chassis import resource
from chassis.convert import timestamp
from chassis.db import Database, UnitOfWork
from chassis.errors import NotFound, Violations
from chassis.resource import Keyset, check_etag, expand_mask, parse_id
from services.crm.domain import journeys as rules
from services.crm.domain.journeys import DEFAULT_JOURNEY
from services.crm.store import donors as donor_store
from services.crm.store import journeys as store
from services.crm.store.donors import Donor
from services.crm.store.journeys import StageChange


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
        return resource.etag(self.version)


async def get_journey(db: Database, org: uuid.UUID) -> Journey:
    async with db.unit_of_work(org) as uow:
        stored = await store.get_versioned(uow.conn, org)
    if stored is None:
        return Journey(DEFAULT_JOURNEY, rules.DEFAULT_VERSION)
    return Journey(*stored)


async def update_journey(db: Database, org: uuid.UUID, stages: list[dict], etag: str, mask: list[str]) -> Journey:
    v = Violations()
    expand_mask(mask, rules.WRITABLE, "update_mask", v)
    graph = rules.normalize_graph(stages, "journey", v)  # "stages" is the only writable field
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        # The default journey becomes a stored row (version 1) first, so every edit locks a row.
        await store.insert_if_absent(uow.conn, org, DEFAULT_JOURNEY)
        old, version = await store.get_versioned(uow.conn, org, lock="FOR UPDATE")
        check_etag(etag, version, "journey", "journey.etag")
        removed = rules.removed_stages(old, graph)
        if removed:
            rules.check_stages_in_use(await store.donors_in_stages(uow.conn, org, sorted(removed)))
        new_version = await store.replace_graph(uow.conn, org, graph)
        uow.audit("crm.journey.update", "journey", str(org), before=old, after=graph)
        return Journey(graph, new_version)


@dataclass(frozen=True)
class Move:
    donor: Donor
    change: StageChange


async def move_donor_stage(db: Database, org: uuid.UUID, donor_id: str, to_stage: str, reason: str, etag: str,
                           changed_by: str) -> Move:
    v = Violations()
    did = parse_id(donor_id, "donor_id", v)
    async with db.unit_of_work(org) as uow:
        return await move_in(uow, org, did, donor_id, to_stage, reason, etag, changed_by, v)


async def move_in(uow: UnitOfWork, org: uuid.UUID, did: uuid.UUID | None, donor_id: str, to_stage: str, reason: str,
                  etag: str, changed_by: str, v: Violations) -> Move:
    """MoveDonorStage inside a unit of work (a workflow's move_stage step runs it in its own)."""
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
    check_etag(etag, donor.version, "donor", "etag")
    current = donor.journey_stage
    rules.check_move(graph, current, to_stage)
    change = await store.move_donor(uow.conn, org, did, uuid.uuid4(), current, to_stage, reason, changed_by)
    uow.publish(
        "crm.donor.stage_changed",
        crm_events_pb2.DonorStageChangedEvent(
            change_id=str(change.id), donor_id=str(did), from_stage=current or "", to_stage=to_stage,
            reason=reason, changed_by=changed_by, change_time=timestamp(change.changed_at)),
        aggregate_type="donor", aggregate_id=str(did),
    )
    uow.audit("crm.donor.move_stage", "donor", str(did), before={"journey_stage": current},
              after={"journey_stage": to_stage, "reason": reason, "change_id": str(change.id)})
    after = await donor_store.get(uow.conn, org, did)
    return Move(donor=after, change=change)


async def list_stage_history(db: Database, org: uuid.UUID, donor_id: str, page_size: int,
                             page_token: str) -> tuple[list[StageChange], str]:
    v = Violations()
    did = parse_id(donor_id, "donor_id", v)
    v.raise_if_any()
    page = Keyset.of(page_size, page_token, ("stage-history", str(did)), (datetime.fromisoformat, uuid.UUID))
    async with db.unit_of_work(org) as uow:
        if await donor_store.get(uow.conn, org, did) is None:
            raise NotFound(f"donor {donor_id} not found")
        rows = await store.history_page(uow.conn, org, did, after=page.after, limit=page.limit)
    return page.cut(rows, lambda r: (r.changed_at, r.id))
