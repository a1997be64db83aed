"""comms over gRPC, for the generation worker: a donor's recent communications, and the
generation session's job (start it, hand back its draft or its failure). Every call carries the
credentials of the tenant the job belongs to, so comms' permissions and RLS decide."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from givance.comms.v1 import (
    communication_service_pb2,
    communication_service_pb2_grpc,
    generation_pb2,
    generation_service_pb2,
    generation_service_pb2_grpc,
    message_pb2,
)

from chassis.errors import InvalidArgument, NotFound, PermissionDenied, Unauthenticated, Unavailable

Metadata = Sequence[tuple[str, str]]
_CHANNEL = {v.number: v.name.removeprefix("CHANNEL_").lower() for v in message_pb2.Channel.DESCRIPTOR.values}


@dataclass
class Job:
    instructions: str
    template: str
    signer_user_id: str
    signer_name: str


class CommsClient:
    def __init__(self, address: str, *, timeout: float = 10.0):
        self.address = address
        self.timeout = timeout
        self._channel: grpc.aio.Channel | None = None

    def _ch(self) -> grpc.aio.Channel:
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(self.address)
        return self._channel

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None

    async def _call(self, rpc, request, metadata: Metadata):
        try:
            return await rpc(request, metadata=metadata, timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc) from None

    async def start_job(self, metadata: Metadata, session_id: str, donor_id: str) -> Job | None:
        """The job's instructions, or None when it is not to be written (cancelled, done)."""
        stub = generation_service_pb2_grpc.GenerationJobServiceStub(self._ch())
        r = await self._call(stub.StartGenerationJob, generation_service_pb2.StartGenerationJobRequest(
            session_id=session_id, donor_id=donor_id), metadata)
        if not r.proceed:
            return None
        return Job(r.instructions, r.template, r.signer.user_id, r.signer.name)

    async def complete_job(self, metadata: Metadata, session_id: str, donor_id: str, draft: dict | None,
                           failure: str = "") -> tuple[str, bool]:
        """(the stored draft's id, whether the job had been completed already). `draft`: subject,
        body, model, grounding (Grounding's fields), token_usage, generation_time_ms."""
        stub = generation_service_pb2_grpc.GenerationJobServiceStub(self._ch())
        request = generation_service_pb2.CompleteGenerationJobRequest(session_id=session_id, donor_id=donor_id)
        if draft is not None:
            request.draft.CopyFrom(generation_service_pb2.Draft(
                subject=draft["subject"], body=draft["body"], model=draft["model"],
                grounding=generation_pb2.Grounding(**draft["grounding"]), token_usage=draft["token_usage"],
                generation_time_ms=draft["generation_time_ms"]))
        else:
            request.failure = failure[:1000] or "failed"
        r = await self._call(stub.CompleteGenerationJob, request, metadata)
        return r.generated_email_id, r.duplicate

    async def recent_communications(self, metadata: Metadata, donor_id: str, limit: int = 5) -> list[dict]:
        """The donor's latest contacts (id, channel, direction, subject, date), newest first; none
        when the credentials may not read them."""
        stub = communication_service_pb2_grpc.CommunicationServiceStub(self._ch())
        try:
            r = await stub.ListCommunications(communication_service_pb2.ListCommunicationsRequest(
                donor_id=donor_id, page_size=limit), metadata=metadata, timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.PERMISSION_DENIED:
                return []
            raise _translate(exc) from None
        return [{"id": c.id, "channel": _CHANNEL.get(c.channel, "other"),
                 "direction": "inbound" if c.direction == 1 else "outbound", "subject": c.subject[:200],
                 "date": c.occur_time.ToDatetime().date().isoformat()} for c in r.communications]


def _translate(exc: grpc.aio.AioRpcError) -> Exception:
    code = exc.code()
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(exc.details() or "not found")
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgument.field("comms", exc.details() or "refused")
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return PermissionDenied(f"comms refused: {exc.details()}")
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return Unauthenticated(f"comms refused the token: {exc.details()}")
    return Unavailable(f"comms could not be reached ({code.name})")
