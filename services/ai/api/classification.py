"""ClassificationService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.ai.v1 import classification_service_pb2 as pb
from givance.ai.v1 import classification_service_pb2_grpc

from services.ai.api.common import forwarded, tenant
from services.ai.handlers import classification as handlers
from services.ai.handlers.deps import Deps

_OUTCOME = {"none": pb.SUGGESTION_OUTCOME_NONE, "created": pb.SUGGESTION_OUTCOME_CREATED,
            "already_open": pb.SUGGESTION_OUTCOME_ALREADY_OPEN}


class ClassificationServicer(classification_service_pb2_grpc.ClassificationServiceServicer):
    def __init__(self, db, deps: Deps):
        self.db = db
        self.deps = deps

    async def ClassifyDonor(self, request: pb.ClassifyDonorRequest, ctx) -> pb.ClassifyDonorResponse:
        c = await handlers.classify_donor(self.db, self.deps, tenant(), forwarded(), request.donor_id,
                                          request.suggest_todo)
        return pb.ClassifyDonorResponse(classification=c.label, reason=c.reason, suggestion=_OUTCOME[c.suggestion],
                                        todo_id=c.todo_id, todo_title=c.todo_title)
