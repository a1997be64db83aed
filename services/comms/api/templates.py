"""TemplateService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.comms.v1 import template_pb2, template_service_pb2_grpc
from givance.comms.v1 import template_service_pb2 as pb

from chassis import context
from chassis.convert import timestamp
from chassis.errors import InvalidArgument
from chassis.resource import etag, update_request
from services.comms.api.convert import CHANNEL_IN, CHANNEL_OUT, struct_dict
from services.comms.api.messages import caller
from services.comms.handlers import sending
from services.comms.handlers import templates as handlers
from services.comms.handlers.deps import Deps
from services.comms.handlers.templates import TemplateBody


def template_to_proto(row: dict) -> template_pb2.Template:
    return template_pb2.Template(
        id=str(row["id"]), organization_id=str(row["organization_id"]), name=row["name"],
        channel=CHANNEL_OUT[row["channel"]], category=row["category"], subject=row["subject"],
        body_text=row["body_text"], body_html=row["body_html"], variables=list(row["variables"]),
        version=row["template_version"], create_time=timestamp(row["created_at"]),
        update_time=timestamp(row["updated_at"]), etag=etag(row["version"]))


def system_to_proto(t: TemplateBody) -> template_pb2.Template:
    return template_pb2.Template(name=t.name, channel=CHANNEL_OUT[t.channel], category=t.category, subject=t.subject,
                                 body_text=t.body_text, body_html=t.body_html, variables=t.variables, system=True)


def body_from_proto(t: template_pb2.Template, *, creating: bool) -> TemplateBody:
    channel = CHANNEL_IN.get(t.channel, "") if t.channel else "email"
    if creating and channel not in ("email", "sms", "whatsapp"):
        raise InvalidArgument.field("template.channel", "must be EMAIL, SMS or WHATSAPP")
    return TemplateBody(t.name, channel, t.category, t.subject, t.body_text, t.body_html, list(t.variables))


def _subject() -> str:
    principal = context.current().principal
    return principal.subject if principal else ""


class TemplateServicer(template_service_pb2_grpc.TemplateServiceServicer):
    def __init__(self, deps: Deps):
        self.deps = deps

    async def CreateTemplate(self, request: pb.CreateTemplateRequest, ctx) -> pb.CreateTemplateResponse:
        row = await handlers.create_template(self.deps.db, context.current().tenant_id, _subject(),
                                             body_from_proto(request.template, creating=True), request.request_id)
        return pb.CreateTemplateResponse(template=template_to_proto(row))

    async def GetTemplate(self, request: pb.GetTemplateRequest, ctx) -> pb.GetTemplateResponse:
        row = await handlers.get_template(self.deps.db, context.current().tenant_id, request.id, request.version)
        return pb.GetTemplateResponse(template=template_to_proto(row))

    async def ListTemplates(self, request: pb.ListTemplatesRequest, ctx) -> pb.ListTemplatesResponse:
        rows, system, token = await handlers.list_templates(self.deps.db, context.current().tenant_id,
                                                            request.page_size, request.page_token)
        return pb.ListTemplatesResponse(templates=[template_to_proto(r) for r in rows]
                                        + [system_to_proto(t) for t in system], next_page_token=token)

    async def UpdateTemplate(self, request: pb.UpdateTemplateRequest, ctx) -> pb.UpdateTemplateResponse:
        _, attrs = update_request(request.template.id, "template.id", request.update_mask.paths, handlers.UPDATABLE)
        row = await handlers.update_template(self.deps.db, context.current().tenant_id, _subject(),
                                             request.template.id, request.template.etag,
                                             body_from_proto(request.template, creating=False), attrs)
        return pb.UpdateTemplateResponse(template=template_to_proto(row))

    async def RenderTemplate(self, request: pb.RenderTemplateRequest, ctx) -> pb.RenderTemplateResponse:
        r = await sending.render_preview(self.deps, context.current().tenant_id, caller(), request.template_name,
                                         struct_dict(request.variables), request.donor_id)
        return pb.RenderTemplateResponse(subject=r.subject, body_text=r.body_text, body_html=r.body_html,
                                         template_version=r.version)
