"""Classification runs: ClassifyDonor for many donors (every donor, or a list), unattended.

StartClassificationRun checks that the caller could do it themself (crm.donors.write, and
crm.todos.write to suggest todos), stores the run and, in the same transaction, its first batch
(`ai.classification.batch_requested`, ai's own work queue `ai.classification-runs`: the
chassis' inbox, retries and dead letters). A batch has no caller: it acts for the tenant with ai's
own tenant token (its platform principal, narrowed to CLASSIFY_PERMISSIONS), classifies up to
BATCH donors as ClassifyDonor does (handlers/classification.apply), and in one transaction
records the progress (the next batch's cursor, the counts) and publishes the next batch.

Resumable: a crash mid-batch redelivers that batch; classifying a donor again changes nothing,
and a todo suggestion is never duplicated (the same one still open is found, and two at once share
one request id in crm). A batch whose cursor is not the run's (a stale copy) does nothing.
"""

from __future__ import annotations

import uuid

from givance.events.v1 import ai_events_pb2

from chassis.context import Principal
from chassis.db import Database, UnitOfWork
from chassis.errors import InvalidArgument, NotFound, PermissionDenied, Violations
from chassis.resource import check_request_id, found, parse_id
from services.ai.handlers import classification
from services.ai.handlers.deps import Deps
from services.ai.store import classification_runs as store
from services.ai.store.classification_runs import Run

__all__ = ["Run", "get", "run_batch", "start"]

BATCH = 25
DONORS_MAX = 5000
BATCH_REQUESTED = "ai.classification.batch_requested"


async def start(db: Database, org: uuid.UUID, caller: Principal | None, donor_ids: list[str], all_donors: bool,
                suggest_todos: bool, request_id: str) -> Run:
    v = Violations()
    donors: list[uuid.UUID] = []
    if all_donors and donor_ids:
        v.add("run.donor_ids", "give either donor_ids or all_donors, not both")
    elif not all_donors and not donor_ids:
        v.add("run.donor_ids", "give donor_ids or all_donors")
    elif len(donor_ids) > DONORS_MAX:
        v.add("run.donor_ids", f"at most {DONORS_MAX} donors per run")
    else:
        for i, raw in enumerate(donor_ids):
            d = parse_id(raw, f"run.donor_ids[{i}]", v)
            if d is not None and d not in donors:
                donors.append(d)
    check_request_id(request_id, v)
    v.raise_if_any()
    # The run writes with ai's token: only for a caller who could write the same themself.
    needed = ["crm.donors.write"] + (["crm.todos.write"] if suggest_todos else [])
    if caller is None or not all(caller.can(p) for p in needed):
        raise PermissionDenied(f"a classification run needs {' and '.join(needed)} of its requester",
                               reason="CLASSIFICATION_RIGHTS")
    requester = uuid.UUID(caller.subject) if caller.kind == "user" else None
    async with db.unit_of_work(org) as uow:
        if request_id:
            earlier = await store.by_request_id(uow.conn, org, request_id)
            if earlier is not None:
                return earlier
        run = await store.insert(uow.conn, org, donors, all_donors, suggest_todos, requester, request_id)
        if run is None:  # a concurrent twin won the request id
            return found(await store.by_request_id(uow.conn, org, request_id), "classification run", request_id)
        uow.publish(BATCH_REQUESTED, ai_events_pb2.ClassificationBatchRequestedEvent(run_id=str(run.id), cursor=""),
                    aggregate_type="classification_run", aggregate_id=str(run.id))
        uow.audit("ai.classification_run.started", "classification_run", str(run.id),
                  after={"all_donors": all_donors, "donors": len(donors), "suggest_todos": suggest_todos})
    return run


async def get(db: Database, org: uuid.UUID, run_id: str) -> Run:
    rid = parse_id(run_id, "id")
    async with db.unit_of_work(org) as uow:
        return found(await store.get(uow.conn, org, rid), "classification run", run_id)


async def run_batch(uow: UnitOfWork, deps: Deps, run_id: str, cursor: str) -> None:
    org = uow.tenant_id
    run = await store.get(uow.conn, org, uuid.UUID(run_id), for_update=True)
    if run is None or run.status != "running" or run.cursor != cursor:
        return  # finished, or a stale copy of a batch already done
    if deps.classifier_metadata is None:
        raise RuntimeError("classification runs need ai's service principal (AI_PRINCIPAL_CLIENT_ID)")
    metadata = await deps.classifier_metadata(org)
    if run.all_donors:
        donors, next_cursor = await deps.crm.donor_ids(metadata, cursor, BATCH)
    else:
        start_at = int(cursor or 0)
        donors = [str(d) for d in run.donor_ids[start_at:start_at + BATCH]]
        next_cursor = str(start_at + BATCH) if start_at + BATCH < len(run.donor_ids) else ""
    classified = failed = todos = 0
    for donor in donors:
        try:
            out = await classification.apply(deps, metadata, donor, run.suggest_todos)
        except (NotFound, InvalidArgument, PermissionDenied):
            failed += 1  # deleted meanwhile, or refused: counted, the run goes on
            continue
        classified += 1
        todos += out.suggestion == "created"
        classification.audit(uow, donor, out)
    done = not next_cursor
    await store.progress(uow.conn, org, run.id, next_cursor, classified, failed, todos, done)
    if not done:
        uow.publish(BATCH_REQUESTED, ai_events_pb2.ClassificationBatchRequestedEvent(
            run_id=str(run.id), cursor=next_cursor), aggregate_type="classification_run", aggregate_id=str(run.id))
