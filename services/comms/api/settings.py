"""SettingsService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.comms.v1 import settings_pb2, settings_service_pb2_grpc
from givance.comms.v1 import settings_service_pb2 as pb
from google.protobuf import duration_pb2

from chassis import context
from chassis.convert import timestamp
from chassis.errors import Violations
from chassis.resource import etag, expand_mask
from services.comms.handlers import settings as handlers
from services.comms.handlers import whatsapp
from services.comms.handlers.deps import Deps

_MASK = {
    "from_name": "from_name", "from_address": "from_address", "reply_to": "reply_to", "signature": "signature",
    "dkim_domain": "dkim_domain", "dkim_selector": "dkim_selector", "dkim_private_key": "dkim_private_key",
    "thank_you_enabled": "thank_you_enabled", "thank_you_template": "thank_you_template",
    "thank_you_first_gift_only": "thank_you_first_gift_only", "thank_you_delay": "thank_you_delay_seconds",
    "send_rate_per_minute": "send_rate_per_minute", "double_opt_in": "double_opt_in",
}


def settings_to_proto(r: dict) -> settings_pb2.SendingSettings:
    return settings_pb2.SendingSettings(
        organization_id=str(r["organization_id"]), from_name=r["from_name"], from_address=r["from_address"],
        reply_to=r["reply_to"], signature=r["signature"], dkim_domain=r["dkim_domain"],
        dkim_selector=r["dkim_selector"], has_dkim_key=r["dkim_key_sealed"] is not None,
        thank_you_enabled=r["thank_you_enabled"], thank_you_template=r["thank_you_template"],
        thank_you_first_gift_only=r["thank_you_first_gift_only"],
        thank_you_delay=duration_pb2.Duration(seconds=r["thank_you_delay_seconds"]),
        send_rate_per_minute=r["send_rate_per_minute"], double_opt_in=r["double_opt_in"],
        update_time=timestamp(r["updated_at"]), etag=etag(r["version"]))


class SettingsServicer(settings_service_pb2_grpc.SettingsServiceServicer):
    def __init__(self, deps: Deps):
        self.deps = deps

    async def GetSendingSettings(self, request: pb.GetSendingSettingsRequest, ctx) -> pb.GetSendingSettingsResponse:
        row = await handlers.get_settings(self.deps, context.current().tenant_id)
        return pb.GetSendingSettingsResponse(settings=settings_to_proto(row))

    async def UpdateSendingSettings(self, request: pb.UpdateSendingSettingsRequest,
                                    ctx) -> pb.UpdateSendingSettingsResponse:
        v = Violations()
        attrs = expand_mask(request.update_mask.paths, _MASK, "update_mask", v)
        v.raise_if_any()
        s = request.settings
        values = {a: getattr(s, a) for a in _MASK.values() if a != "thank_you_delay_seconds"}
        values["thank_you_delay_seconds"] = s.thank_you_delay.seconds
        row = await handlers.update_settings(self.deps, context.current().tenant_id, s.etag, values, attrs)
        return pb.UpdateSendingSettingsResponse(settings=settings_to_proto(row))

    async def AddWhatsAppStaff(self, request: pb.AddWhatsAppStaffRequest, ctx) -> pb.AddWhatsAppStaffResponse:
        row = await whatsapp.add_staff(self.deps, context.current().tenant_id, request.staff.phone,
                                       request.staff.user_id)
        return pb.AddWhatsAppStaffResponse(staff=staff_to_proto(row))

    async def ListWhatsAppStaff(self, request: pb.ListWhatsAppStaffRequest, ctx) -> pb.ListWhatsAppStaffResponse:
        rows = await whatsapp.list_staff(self.deps, context.current().tenant_id)
        return pb.ListWhatsAppStaffResponse(staff=[staff_to_proto(r) for r in rows])

    async def RemoveWhatsAppStaff(self, request: pb.RemoveWhatsAppStaffRequest,
                                  ctx) -> pb.RemoveWhatsAppStaffResponse:
        await whatsapp.remove_staff(self.deps, context.current().tenant_id, request.id)
        return pb.RemoveWhatsAppStaffResponse()


def staff_to_proto(r: dict) -> settings_pb2.WhatsAppStaff:
    return settings_pb2.WhatsAppStaff(id=str(r["id"]), organization_id=str(r["organization_id"]), phone=r["phone"],
                                      user_id=str(r["user_id"] or ""), create_time=timestamp(r["created_at"]))
