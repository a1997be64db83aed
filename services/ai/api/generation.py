"""GenerationService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.ai.v1 import generation_service_pb2 as pb
from givance.ai.v1 import generation_service_pb2_grpc

from services.ai.api.common import forwarded, tenant, user
from services.ai.handlers import generation as handlers
from services.ai.handlers.deps import Deps


class GenerationServicer(generation_service_pb2_grpc.GenerationServiceServicer):
    def __init__(self, db, deps: Deps):
        self.db = db
        self.deps = deps

    async def GenerateDonorEmail(self, request: pb.GenerateDonorEmailRequest, ctx) -> pb.GenerateDonorEmailResponse:
        g = await handlers.generate(self.db, self.deps, tenant(), user(), forwarded(), request.donor_id,
                                    request.instructions, request.signer_name, request.template)
        return pb.GenerateDonorEmailResponse(
            subject=g.subject, body=g.body, model=g.model,
            grounding=pb.Grounding(donation_ids=g.donation_ids, research_id=g.research_id,
                                   donor_fields=g.donor_fields, todo_ids=g.todo_ids,
                                   used_organization_profile=g.used_profile, used_instructions=g.used_instructions),
            prompt_tokens=g.prompt_tokens, completion_tokens=g.completion_tokens)
