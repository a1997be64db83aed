"""ClassificationService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.ai.v1 import classification_pb2, classification_service_pb2_grpc
from givance.ai.v1 import classification_service_pb2 as pb

from chassis import context
from chassis.convert import timestamp
from services.ai.api.common import forwarded, tenant
from services.ai.handlers import classification as handlers
from services.ai.handlers import classification_runs as runs
from services.ai.handlers.deps import Deps

_OUTCOME = {"none": pb.SUGGESTION_OUTCOME_NONE, "created": pb.SUGGESTION_OUTCOME_CREATED,
            "already_open": pb.SUGGESTION_OUTCOME_ALREADY_OPEN}
_RUN_STATUS = {"running": classification_pb2.CLASSIFICATION_RUN_STATUS_RUNNING,
               "completed": classification_pb2.CLASSIFICATION_RUN_STATUS_COMPLETED}


def run_proto(r: runs.Run) -> classification_pb2.ClassificationRun:
    return classification_pb2.ClassificationRun(
        id=str(r.id), organization_id=str(r.organization_id), donor_ids=[str(d) for d in r.donor_ids],
        all_donors=r.all_donors, suggest_todos=r.suggest_todos, status=_RUN_STATUS[r.status],
        classified_count=r.classified_count, failed_count=r.failed_count, todos_created=r.todos_created,
        requester_id=str(r.requested_by or ""), create_time=timestamp(r.created_at),
        complete_time=timestamp(r.completed_at))


class ClassificationServicer(classification_service_pb2_grpc.ClassificationServiceServicer):
    def __init__(self, db, deps: Deps):
        self.db = db
        self.deps = deps

    async def ClassifyDonor(self, request: pb.ClassifyDonorRequest, ctx) -> pb.ClassifyDonorResponse:
        c = await handlers.classify_donor(self.db, self.deps, tenant(), forwarded(), request.donor_id,
                                          request.suggest_todo)
        return pb.ClassifyDonorResponse(classification=c.label, reason=c.reason, suggestion=_OUTCOME[c.suggestion],
                                        todo_id=c.todo_id, todo_title=c.todo_title)

    async def StartClassificationRun(self, request: pb.StartClassificationRunRequest,
                                     ctx) -> pb.StartClassificationRunResponse:
        r = request.run
        run = await runs.start(self.db, tenant(), context.current().principal, list(r.donor_ids), r.all_donors,
                               r.suggest_todos, request.request_id)
        return pb.StartClassificationRunResponse(run=run_proto(run))

    async def GetClassificationRun(self, request: pb.GetClassificationRunRequest,
                                   ctx) -> pb.GetClassificationRunResponse:
        return pb.GetClassificationRunResponse(run=run_proto(await runs.get(self.db, tenant(), request.id)))
