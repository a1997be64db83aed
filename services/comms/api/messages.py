"""MessageService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.comms.v1 import message_pb2, message_service_pb2_grpc
from givance.comms.v1 import message_service_pb2 as pb

from chassis import context
from chassis.convert import from_timestamp, timestamp
from chassis.errors import InvalidArgument
from services.comms.api.convert import CHANNEL_IN, CHANNEL_OUT, STATUS_IN, STATUS_OUT, struct_dict
from services.comms.handlers import messages as handlers
from services.comms.handlers import receipts, sending
from services.comms.handlers.deps import Deps
from services.comms.providers.crm import Caller
from services.comms.store.messages import MessageRow


def message_to_proto(m: MessageRow) -> message_pb2.Message:
    return message_pb2.Message(
        id=str(m.id), organization_id=str(m.organization_id), channel=CHANNEL_OUT[m.channel],
        donor_id=str(m.donor_id or ""), to_address=m.to_address, template_name=m.template_name,
        category=m.category, subject=m.subject, status=STATUS_OUT[m.status], status_reason=m.status_reason,
        attempt_count=m.attempt_count, rfc822_message_id=m.rfc822_message_id, create_time=timestamp(m.created_at),
        schedule_time=timestamp(m.scheduled_at), send_time=timestamp(m.sent_at), open_count=m.open_count,
        click_count=m.click_count)


def caller() -> Caller:
    ctx = context.current()
    return Caller(ctx.token, str(ctx.tenant_id))


def _subject() -> str:
    principal = context.current().principal
    return principal.subject if principal else ""


class MessageServicer(message_service_pb2_grpc.MessageServiceServicer):
    def __init__(self, deps: Deps):
        self.deps = deps

    async def SendMessage(self, request: pb.SendMessageRequest, ctx) -> pb.SendMessageResponse:
        channel = CHANNEL_IN.get(request.channel, "email") if request.channel else "email"
        if channel not in ("email", "sms", "whatsapp"):
            raise InvalidArgument.field("channel", "must be EMAIL, SMS or WHATSAPP")
        row = await sending.send_message(self.deps, context.current().tenant_id, caller(), _subject(),
                                         sending.SendRequest(
            request_id=request.request_id, donor_id=request.donor_id, to_address=request.to_address,
            channel=channel, template_name=request.template_name, variables=struct_dict(request.variables),
            category=request.category,
            schedule_at=from_timestamp(request.schedule_time) if request.HasField("schedule_time") else None))
        return pb.SendMessageResponse(message=message_to_proto(row))

    async def GetMessage(self, request: pb.GetMessageRequest, ctx) -> pb.GetMessageResponse:
        row = await handlers.get_message(self.deps.db, context.current().tenant_id, request.id)
        return pb.GetMessageResponse(message=message_to_proto(row))

    async def ListMessages(self, request: pb.ListMessagesRequest, ctx) -> pb.ListMessagesResponse:
        if request.status and request.status not in STATUS_IN:
            raise InvalidArgument.field("status", f"unknown status {request.status}")
        rows, token = await handlers.list_messages(
            self.deps.db, context.current().tenant_id, donor_id=request.donor_id,
            status=STATUS_IN.get(request.status), page_size=request.page_size, page_token=request.page_token)
        return pb.ListMessagesResponse(messages=[message_to_proto(r) for r in rows], next_page_token=token)

    async def SendReceipt(self, request: pb.SendReceiptRequest, ctx) -> pb.SendReceiptResponse:
        row, donation_ids = await receipts.send_receipt(self.deps, context.current().tenant_id, caller(),
                                                        request.request_id, request.donor_id, request.year)
        return pb.SendReceiptResponse(message=message_to_proto(row), donation_ids=donation_ids)
