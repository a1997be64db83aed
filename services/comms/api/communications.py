"""CommunicationService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.comms.v1 import communication_pb2, communication_service_pb2_grpc
from givance.comms.v1 import communication_service_pb2 as pb

from chassis import context
from chassis.convert import from_timestamp, timestamp
from chassis.errors import Violations
from services.comms.api.convert import CHANNEL_IN, CHANNEL_OUT, DIRECTION_IN, DIRECTION_OUT
from services.comms.api.messages import caller
from services.comms.handlers import communications as handlers
from services.comms.handlers.deps import Deps


def communication_to_proto(r: dict) -> communication_pb2.Communication:
    return communication_pb2.Communication(
        id=str(r["id"]), organization_id=str(r["organization_id"]), donor_id=str(r["donor_id"]),
        channel=CHANNEL_OUT[r["channel"]], direction=DIRECTION_OUT[r["direction"]], subject=r["subject"],
        content=r["content"], occur_time=timestamp(r["occurred_at"]), logged_by=str(r["logged_by"] or ""),
        message_id=str(r["message_id"] or ""), create_time=timestamp(r["created_at"]))


class CommunicationServicer(communication_service_pb2_grpc.CommunicationServiceServicer):
    def __init__(self, deps: Deps):
        self.deps = deps
        self.db = deps.db

    async def LogCommunication(self, request: pb.LogCommunicationRequest, ctx) -> pb.LogCommunicationResponse:
        c = request.communication
        v = Violations()
        if c.channel and c.channel not in CHANNEL_IN:
            v.add("communication.channel", f"unknown channel {c.channel}")
        if c.direction and c.direction not in DIRECTION_IN:
            v.add("communication.direction", f"unknown direction {c.direction}")
        v.raise_if_any()
        principal = context.current().principal
        row = await handlers.log_communication(
            self.db, self.deps.crm, caller(), context.current().tenant_id, principal.subject if principal else "",
            handlers.LogFields(donor_id=c.donor_id, channel=CHANNEL_IN.get(c.channel),
                               direction=DIRECTION_IN.get(c.direction), subject=c.subject, content=c.content,
                               occurred_at=from_timestamp(c.occur_time) if c.HasField("occur_time") else None),
            request.request_id)
        return pb.LogCommunicationResponse(communication=communication_to_proto(row))

    async def GetCommunication(self, request: pb.GetCommunicationRequest, ctx) -> pb.GetCommunicationResponse:
        row = await handlers.get_communication(self.db, context.current().tenant_id, request.id)
        return pb.GetCommunicationResponse(communication=communication_to_proto(row))

    async def ListCommunications(self, request: pb.ListCommunicationsRequest, ctx) -> pb.ListCommunicationsResponse:
        v = Violations()
        if request.channel and request.channel not in CHANNEL_IN:
            v.add("channel", f"unknown channel {request.channel}")
        v.raise_if_any()
        rows, token = await handlers.list_communications(
            self.db, context.current().tenant_id, donor_id=request.donor_id, channel=CHANNEL_IN.get(request.channel),
            after_time=from_timestamp(request.occur_after) if request.HasField("occur_after") else None,
            before_time=from_timestamp(request.occur_before) if request.HasField("occur_before") else None,
            page_size=request.page_size, page_token=request.page_token)
        return pb.ListCommunicationsResponse(communications=[communication_to_proto(r) for r in rows],
                                             next_page_token=token)
