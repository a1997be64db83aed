"""ResearchService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.ai.v1 import research_pb2, research_service_pb2_grpc
from givance.ai.v1 import research_service_pb2 as pb

from chassis.convert import timestamp
from services.ai.api.common import forwarded, tenant, user
from services.ai.handlers import research as handlers
from services.ai.handlers.deps import Deps

_STATUS = {"pending": research_pb2.RESEARCH_STATUS_PENDING, "completed": research_pb2.RESEARCH_STATUS_COMPLETED,
           "failed": research_pb2.RESEARCH_STATUS_FAILED}
_BASIS = {None: research_pb2.RESEARCH_BASIS_UNSPECIFIED, "web": research_pb2.RESEARCH_BASIS_WEB,
          "organization_data": research_pb2.RESEARCH_BASIS_ORGANIZATION_DATA}


def to_proto(r: handlers.Research) -> research_pb2.DonorResearch:
    return research_pb2.DonorResearch(
        id=str(r.id), donor_id=str(r.donor_id), version=r.version, status=_STATUS[r.status], basis=_BASIS[r.basis],
        summary=r.summary, claims=[research_pb2.ResearchClaim(text=c["text"], source_ids=c["source_ids"])
                                   for c in r.claims],
        sources=[research_pb2.ResearchSource(id=s["id"], url=s["url"], title=s["title"]) for s in r.sources],
        model=r.model, error=r.error, requester_id=str(r.requested_by or ""), create_time=timestamp(r.created_at),
        complete_time=timestamp(r.completed_at))


class ResearchServicer(research_service_pb2_grpc.ResearchServiceServicer):
    def __init__(self, db, deps: Deps):
        self.db = db
        self.deps = deps

    async def ResearchDonor(self, request: pb.ResearchDonorRequest, ctx) -> pb.ResearchDonorResponse:
        row = await handlers.request(self.db, self.deps, tenant(), user(), forwarded(), request.donor_id,
                                     request.request_id)
        return pb.ResearchDonorResponse(research=to_proto(row))

    async def GetDonorResearch(self, request: pb.GetDonorResearchRequest, ctx) -> pb.GetDonorResearchResponse:
        return pb.GetDonorResearchResponse(
            research=to_proto(await handlers.get(self.db, tenant(), request.donor_id, request.version)))

    async def ListDonorResearch(self, request: pb.ListDonorResearchRequest, ctx) -> pb.ListDonorResearchResponse:
        rows, token = await handlers.list_versions(self.db, tenant(), request.donor_id, request.page_size,
                                                   request.page_token)
        return pb.ListDonorResearchResponse(research=[to_proto(r) for r in rows], next_page_token=token)
