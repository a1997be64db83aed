"""ProjectService: proto in, handler call, proto out."""

from __future__ import annotations

from decimal import Decimal

from givance.crm.v1 import project_pb2, project_service_pb2_grpc
from givance.crm.v1 import project_service_pb2 as pb
from google.protobuf import struct_pb2
from google.protobuf.json_format import MessageToDict

from chassis import context
from chassis.convert import date as date_pb
from chassis.convert import enum_in, from_date, from_money, money, timestamp
from chassis.db import Database
from chassis.errors import InvalidArgument
from chassis.resource import etag
from services.crm.handlers import projects as handlers
from services.crm.handlers.projects import Project, ProjectFields

_STATUS_IN = {
    project_pb2.PROJECT_STATUS_UNSPECIFIED: None, project_pb2.PROJECT_STATUS_DRAFT: "draft",
    project_pb2.PROJECT_STATUS_ACTIVE: "active", project_pb2.PROJECT_STATUS_COMPLETED: "completed",
    project_pb2.PROJECT_STATUS_CANCELLED: "cancelled",
}
_STATUS_OUT = {v: k for k, v in _STATUS_IN.items() if v}


def fields_from_proto(p: project_pb2.Project) -> ProjectFields:
    """Plain values; what cannot be read at all is left in `problems` for the handler to report."""
    f = ProjectFields(name=p.name, description=p.description, currency=p.currency_code,
                            settings=MessageToDict(p.settings) if p.HasField("settings") else {})
    if p.HasField("target_amount"):
        f.target_currency = p.target_amount.currency_code
        try:
            f.target_amount = from_money(p.target_amount)
        except ValueError as exc:
            f.problems["target_amount"] = ("project.target_amount", str(exc))
    for attr in ("start_date", "end_date"):
        if p.HasField(attr):
            try:
                setattr(f, attr, from_date(getattr(p, attr)))
            except ValueError as exc:
                f.problems[attr] = (f"project.{attr}", f"is not a valid date: {exc}")
    f.status = enum_in(p.status, _STATUS_IN, f.problems, "status", "project.status")
    return f


def project_to_proto(p: Project) -> project_pb2.Project:
    settings = struct_pb2.Struct()
    settings.update(p.settings or {})
    target = p.target_amount
    return project_pb2.Project(
        id=str(p.id), organization_id=str(p.organization_id), name=p.name,
        description=p.description or "", currency_code=p.currency,
        target_amount=money(target, p.currency) if target is not None else None,
        start_date=date_pb(p.start_date), end_date=date_pb(p.end_date),
        status=_STATUS_OUT[p.status], settings=settings,
        raised_amount=money(Decimal(p.raised_amount), p.currency), donor_count=p.donor_count,
        create_time=timestamp(p.created_at), update_time=timestamp(p.updated_at),
        delete_time=timestamp(p.deleted_at), etag=etag(p.version),
    )


class ProjectServicer(project_service_pb2_grpc.ProjectServiceServicer):
    def __init__(self, db: Database):
        self.db = db

    async def CreateProject(self, request: pb.CreateProjectRequest, ctx) -> pb.CreateProjectResponse:
        row = await handlers.create_project(self.db, context.current().tenant_id, fields_from_proto(request.project),
                                            request.request_id)
        return pb.CreateProjectResponse(project=project_to_proto(row))

    async def GetProject(self, request: pb.GetProjectRequest, ctx) -> pb.GetProjectResponse:
        row = await handlers.get_project(self.db, context.current().tenant_id, request.id)
        return pb.GetProjectResponse(project=project_to_proto(row))

    async def ListProjects(self, request: pb.ListProjectsRequest, ctx) -> pb.ListProjectsResponse:
        if request.status not in _STATUS_IN:
            raise InvalidArgument.field("status", f"unknown status {request.status}")
        rows, token = await handlers.list_projects(self.db, context.current().tenant_id, _STATUS_IN[request.status],
                                                   request.page_size, request.page_token)
        return pb.ListProjectsResponse(projects=[project_to_proto(r) for r in rows], next_page_token=token)

    async def UpdateProject(self, request: pb.UpdateProjectRequest, ctx) -> pb.UpdateProjectResponse:
        row = await handlers.update_project(self.db, context.current().tenant_id, request.project.id,
                                            request.project.etag, fields_from_proto(request.project),
                                            list(request.update_mask.paths))
        return pb.UpdateProjectResponse(project=project_to_proto(row))

    async def DeleteProject(self, request: pb.DeleteProjectRequest, ctx) -> pb.DeleteProjectResponse:
        row = await handlers.delete_project(self.db, context.current().tenant_id, request.id, request.etag)
        return pb.DeleteProjectResponse(project=project_to_proto(row))
