"""EmailGenerationService and GenerationJobService: proto in, handler call, proto out."""

from __future__ import annotations

import uuid

from givance.comms.v1 import generation_pb2, generation_service_pb2_grpc
from givance.comms.v1 import generation_service_pb2 as pb
from google.protobuf import json_format

from chassis import context
from chassis.convert import from_timestamp, timestamp
from chassis.errors import InvalidArgument
from chassis.resource import etag
from services.comms.api.messages import caller
from services.comms.handlers import generated_emails as emails
from services.comms.handlers import generation_jobs as jobs
from services.comms.handlers import generation_sessions as sessions
from services.comms.handlers.deps import Deps
from services.comms.store.generation import GeneratedEmail, Session

SESSION_STATUS = {"configuring": generation_pb2.SESSION_STATUS_CONFIGURING,
                  "generating": generation_pb2.SESSION_STATUS_GENERATING,
                  "completed": generation_pb2.SESSION_STATUS_COMPLETED,
                  "cancelled": generation_pb2.SESSION_STATUS_CANCELLED}
EMAIL_STATUS = {"draft": generation_pb2.GENERATED_EMAIL_STATUS_DRAFT,
                "approved": generation_pb2.GENERATED_EMAIL_STATUS_APPROVED,
                "scheduled": generation_pb2.GENERATED_EMAIL_STATUS_SCHEDULED,
                "sent": generation_pb2.GENERATED_EMAIL_STATUS_SENT,
                "failed": generation_pb2.GENERATED_EMAIL_STATUS_FAILED,
                "rejected": generation_pb2.GENERATED_EMAIL_STATUS_REJECTED}
EMAIL_STATUS_IN = {v: k for k, v in EMAIL_STATUS.items()}
SESSION_STATUS_IN = {v: k for k, v in SESSION_STATUS.items()}


def _str(value) -> str:
    return str(value) if value is not None else ""


def session_to_proto(s: Session) -> generation_pb2.EmailGenerationSession:
    selection = s.selection
    return generation_pb2.EmailGenerationSession(
        id=str(s.id), organization_id=str(s.organization_id), name=s.name, description=s.description,
        status=SESSION_STATUS[s.status], instructions=s.instructions,
        donor_ids=[str(d) for d in s.selected_donor_ids], donor_list_id=selection.get("donor_list_id", ""),
        template=s.template, signer=generation_pb2.Signer(user_id=_str(s.signer_user_id), name=s.signer_name),
        total_emails=s.total_emails, generated_count=s.generated_count, failed_count=s.failed_count,
        create_time=timestamp(s.created_at), update_time=timestamp(s.updated_at),
        start_time=timestamp(s.job_started_at), complete_time=timestamp(s.job_completed_at), etag=etag(s.version),
        created_by=_str(s.created_by))


def email_to_proto(e: GeneratedEmail) -> generation_pb2.GeneratedEmail:
    g = e.grounding
    return generation_pb2.GeneratedEmail(
        id=str(e.id), session_id=str(e.session_id), donor_id=str(e.donor_id), subject=e.subject,
        body_plain=e.body_plain, body_html=e.body_html, status=EMAIL_STATUS[e.status], status_reason=e.status_reason,
        model=e.ai_model, grounding=json_format.ParseDict(g, generation_pb2.Grounding(), ignore_unknown_fields=True),
        token_usage=e.token_usage, generation_time_ms=e.generation_time_ms, message_id=_str(e.message_id),
        schedule_time=timestamp(e.scheduled_for), send_time=timestamp(e.sent_at), open_count=e.open_count,
        click_count=e.click_count, approved_by=_str(e.approved_by), approve_time=timestamp(e.approved_at),
        sent_by=_str(e.sent_by_staff_id), create_time=timestamp(e.created_at), update_time=timestamp(e.updated_at),
        etag=etag(e.version))


def _principal() -> uuid.UUID | None:
    p = context.current().principal
    try:
        return uuid.UUID(p.subject) if p is not None else None
    except ValueError:
        return None


def _org() -> uuid.UUID:
    return context.current().tenant_id


class EmailGenerationServicer(generation_service_pb2_grpc.EmailGenerationServiceServicer):
    def __init__(self, deps: Deps):
        self.deps = deps

    async def CreateEmailGenerationSession(self, request: pb.CreateEmailGenerationSessionRequest,
                                           ctx) -> pb.CreateEmailGenerationSessionResponse:
        s = request.session
        row = await sessions.create(self.deps, _org(), caller(), _principal(), sessions.NewSession(
            name=s.name, description=s.description, instructions=s.instructions, donor_ids=list(s.donor_ids),
            donor_list_id=s.donor_list_id, template=s.template, signer_user_id=s.signer.user_id,
            signer_name=s.signer.name, request_id=request.request_id))
        return pb.CreateEmailGenerationSessionResponse(session=session_to_proto(row))

    async def ListEmailGenerationSessions(self, request: pb.ListEmailGenerationSessionsRequest,
                                          ctx) -> pb.ListEmailGenerationSessionsResponse:
        if request.status and request.status not in SESSION_STATUS_IN:
            raise InvalidArgument.field("status", f"unknown status {request.status}")
        rows, token = await sessions.list_sessions(self.deps, _org(), SESSION_STATUS_IN.get(request.status),
                                                   request.page_size, request.page_token)
        return pb.ListEmailGenerationSessionsResponse(sessions=[session_to_proto(r) for r in rows],
                                                      next_page_token=token)

    async def GetEmailGenerationSession(self, request, ctx) -> pb.GetEmailGenerationSessionResponse:
        return pb.GetEmailGenerationSessionResponse(
            session=session_to_proto(await sessions.get(self.deps, _org(), request.id)))

    async def WatchEmailGenerationSession(self, request, ctx):
        async for row in sessions.watch(self.deps, _org(), request.id):
            yield pb.WatchEmailGenerationSessionResponse(session=session_to_proto(row))

    async def CancelEmailGenerationSession(self, request, ctx) -> pb.CancelEmailGenerationSessionResponse:
        return pb.CancelEmailGenerationSessionResponse(
            session=session_to_proto(await sessions.cancel(self.deps, _org(), request.id)))

    async def ListGeneratedEmails(self, request: pb.ListGeneratedEmailsRequest, ctx) -> pb.ListGeneratedEmailsResponse:
        if request.status and request.status not in EMAIL_STATUS_IN:
            raise InvalidArgument.field("status", f"unknown status {request.status}")
        rows, token = await emails.list_emails(self.deps, _org(), request.session_id,
                                               EMAIL_STATUS_IN.get(request.status), request.page_size,
                                               request.page_token)
        return pb.ListGeneratedEmailsResponse(emails=[email_to_proto(r) for r in rows], next_page_token=token)

    async def UpdateGeneratedEmail(self, request: pb.UpdateGeneratedEmailRequest,
                                   ctx) -> pb.UpdateGeneratedEmailResponse:
        e = request.email
        row = await emails.update(self.deps, _org(), e.id, e.etag, list(request.update_mask.paths), e.subject,
                                  e.body_plain)
        return pb.UpdateGeneratedEmailResponse(email=email_to_proto(row))

    async def ApproveEmail(self, request: pb.ApproveEmailRequest, ctx) -> pb.ApproveEmailResponse:
        row = await emails.approve(self.deps, _org(), _principal(), request.id, request.etag)
        return pb.ApproveEmailResponse(email=email_to_proto(row))

    async def RejectEmail(self, request: pb.RejectEmailRequest, ctx) -> pb.RejectEmailResponse:
        row = await emails.reject(self.deps, _org(), request.id, request.reason, request.etag)
        return pb.RejectEmailResponse(email=email_to_proto(row))

    async def BatchApproveEmails(self, request: pb.BatchApproveEmailsRequest, ctx) -> pb.BatchApproveEmailsResponse:
        count = await emails.batch_approve(self.deps, _org(), _principal(), request.session_id, list(request.ids))
        return pb.BatchApproveEmailsResponse(approved_count=count)

    async def SendApprovedEmails(self, request: pb.SendApprovedEmailsRequest, ctx) -> pb.SendApprovedEmailsResponse:
        at = from_timestamp(request.send_time) if request.HasField("send_time") else None
        scheduled, failed = await emails.send_approved(self.deps, _org(), caller(), _principal(), request.session_id,
                                                       list(request.ids), at)
        return pb.SendApprovedEmailsResponse(scheduled_count=scheduled, failed_count=failed)


class GenerationJobServicer(generation_service_pb2_grpc.GenerationJobServiceServicer):
    def __init__(self, deps: Deps):
        self.deps = deps

    async def StartGenerationJob(self, request: pb.StartGenerationJobRequest, ctx) -> pb.StartGenerationJobResponse:
        proceed, s = await jobs.start(self.deps, _org(), request.session_id, request.donor_id)
        if not proceed:
            return pb.StartGenerationJobResponse(proceed=False)
        return pb.StartGenerationJobResponse(
            proceed=True, instructions=s.instructions, template=s.template, session_name=s.name,
            signer=generation_pb2.Signer(user_id=_str(s.signer_user_id), name=s.signer_name))

    async def CompleteGenerationJob(self, request: pb.CompleteGenerationJobRequest,
                                    ctx) -> pb.CompleteGenerationJobResponse:
        draft = None
        if request.HasField("draft"):
            d = request.draft
            draft = jobs.Draft(subject=d.subject, body=d.body, model=d.model,
                               grounding=json_format.MessageToDict(d.grounding, preserving_proto_field_name=True),
                               token_usage=d.token_usage, generation_time_ms=d.generation_time_ms)
        elif not request.HasField("failure"):
            raise InvalidArgument.field("draft", "give a draft or a failure")
        done = await jobs.complete(self.deps, _org(), request.session_id, request.donor_id, draft, request.failure)
        return pb.CompleteGenerationJobResponse(generated_email_id=_str(done.email_id), duplicate=done.duplicate)
