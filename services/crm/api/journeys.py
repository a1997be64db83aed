"""JourneyService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.crm.v1 import journey_pb2, journey_service_pb2_grpc
from givance.crm.v1 import journey_service_pb2 as pb

from chassis import context
from chassis.convert import timestamp
from chassis.db import Database
from services.crm.api.donor_messages import donor_to_proto
from services.crm.handlers import journeys as handlers


def stages_from_proto(j: journey_pb2.Journey) -> list[dict]:
    return [{"id": s.id, "name": s.name, "description": s.description,
             "transitions": [{"to": t.to, "condition": t.condition} for t in s.transitions]}
            for s in j.stages]


def journey_to_proto(j: handlers.Journey) -> journey_pb2.Journey:
    return journey_pb2.Journey(
        stages=[journey_pb2.Stage(
            id=s["id"], name=s["name"], description=s.get("description") or "",
            transitions=[journey_pb2.Transition(to=t["to"], condition=t.get("condition") or "")
                         for t in s.get("transitions") or []])
            for s in j.graph["stages"]],
        etag=j.etag,
    )


def change_to_proto(c: handlers.StageChange) -> journey_pb2.DonorStageChange:
    return journey_pb2.DonorStageChange(
        id=str(c.id), donor_id=str(c.donor_id), from_stage=c.from_stage or "", to_stage=c.to_stage,
        reason=c.reason, changed_by=c.changed_by, change_time=timestamp(c.changed_at),
    )


class JourneyServicer(journey_service_pb2_grpc.JourneyServiceServicer):
    def __init__(self, db: Database):
        self.db = db

    async def GetJourney(self, request: pb.GetJourneyRequest, ctx) -> pb.GetJourneyResponse:
        journey = await handlers.get_journey(self.db, context.current().tenant_id)
        return pb.GetJourneyResponse(journey=journey_to_proto(journey))

    async def UpdateJourney(self, request: pb.UpdateJourneyRequest, ctx) -> pb.UpdateJourneyResponse:
        journey = await handlers.update_journey(self.db, context.current().tenant_id,
                                                stages_from_proto(request.journey), request.journey.etag,
                                                list(request.update_mask.paths))
        return pb.UpdateJourneyResponse(journey=journey_to_proto(journey))

    async def MoveDonorStage(self, request: pb.MoveDonorStageRequest, ctx) -> pb.MoveDonorStageResponse:
        rc = context.current()
        move = await handlers.move_donor_stage(self.db, rc.tenant_id, request.donor_id, request.to_stage,
                                               request.reason, request.etag,
                                               rc.principal.subject if rc.principal else "")
        return pb.MoveDonorStageResponse(donor=donor_to_proto(move.donor), change=change_to_proto(move.change))

    async def ListDonorStageHistory(self, request: pb.ListDonorStageHistoryRequest,
                                    ctx) -> pb.ListDonorStageHistoryResponse:
        rows, token = await handlers.list_stage_history(self.db, context.current().tenant_id, request.donor_id,
                                                        request.page_size, request.page_token)
        return pb.ListDonorStageHistoryResponse(changes=[change_to_proto(r) for r in rows], next_page_token=token)
