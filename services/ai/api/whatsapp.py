"""WhatsAppAssistantService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.ai.v1 import whatsapp_pb2, whatsapp_service_pb2_grpc
from givance.ai.v1 import whatsapp_service_pb2 as pb

from chassis.convert import timestamp
from chassis.errors import InvalidArgument
from services.ai.api.common import tenant, user
from services.ai.handlers import whatsapp as handlers
from services.ai.handlers.deps import Deps

_STATUS_OUT = {"answered": whatsapp_pb2.ASSISTANT_QUERY_STATUS_ANSWERED,
               "refused": whatsapp_pb2.ASSISTANT_QUERY_STATUS_REFUSED}
_STATUS_IN = {v: k for k, v in _STATUS_OUT.items()}


def entry_proto(e: handlers.Entry) -> whatsapp_pb2.WhatsAppAllowlistEntry:
    return whatsapp_pb2.WhatsAppAllowlistEntry(id=str(e.id), organization_id=str(e.organization_id), phone=e.phone,
                                               user_id=str(e.user_id), create_time=timestamp(e.created_at))


def query_proto(q: handlers.Query) -> whatsapp_pb2.WhatsAppQuery:
    return whatsapp_pb2.WhatsAppQuery(
        id=str(q.id), organization_id=str(q.organization_id), inbound_message_id=q.message_id,
        from_phone=q.from_phone, user_id=str(q.user_id or ""), question=q.query_text, answer=q.response_text,
        status=_STATUS_OUT[q.status], tools=list(q.tools), model=q.model, create_time=timestamp(q.created_at))


class WhatsAppAssistantServicer(whatsapp_service_pb2_grpc.WhatsAppAssistantServiceServicer):
    def __init__(self, db, deps: Deps):
        self.db = db
        self.deps = deps

    async def AddWhatsAppAllowlistEntry(self, request: pb.AddWhatsAppAllowlistEntryRequest,
                                        ctx) -> pb.AddWhatsAppAllowlistEntryResponse:
        e = await handlers.add_entry(self.db, tenant(), user(), request.entry.phone, request.entry.user_id)
        return pb.AddWhatsAppAllowlistEntryResponse(entry=entry_proto(e))

    async def ListWhatsAppAllowlistEntries(self, request, ctx) -> pb.ListWhatsAppAllowlistEntriesResponse:
        return pb.ListWhatsAppAllowlistEntriesResponse(
            entries=[entry_proto(e) for e in await handlers.list_entries(self.db, tenant())])

    async def RemoveWhatsAppAllowlistEntry(self, request: pb.RemoveWhatsAppAllowlistEntryRequest,
                                           ctx) -> pb.RemoveWhatsAppAllowlistEntryResponse:
        await handlers.remove_entry(self.db, tenant(), request.id)
        return pb.RemoveWhatsAppAllowlistEntryResponse()

    async def ListWhatsAppQueries(self, request: pb.ListWhatsAppQueriesRequest,
                                  ctx) -> pb.ListWhatsAppQueriesResponse:
        status = None
        if request.status != whatsapp_pb2.ASSISTANT_QUERY_STATUS_UNSPECIFIED:
            status = _STATUS_IN.get(request.status)
            if status is None:
                raise InvalidArgument.field("status", "is not a known status")
        rows, token = await handlers.list_queries(self.db, tenant(), status, request.page_size, request.page_token)
        return pb.ListWhatsAppQueriesResponse(queries=[query_proto(q) for q in rows], next_page_token=token)
