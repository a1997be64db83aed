"""RevocationService: the revocations in force, listed for the other services' verifiers."""

from __future__ import annotations

from givance.identity.v1 import revocation_service_pb2 as pb
from givance.identity.v1 import revocation_service_pb2_grpc

from chassis.revocation import SESSION
from services.identity.handlers import revocations
from services.identity.handlers.deps import Deps


def _ts(target, seconds: float) -> None:
    target.FromNanoseconds(int(seconds * 1_000_000) * 1000)


class RevocationServicer(revocation_service_pb2_grpc.RevocationServiceServicer):
    def __init__(self, deps: Deps):
        self.deps = deps

    async def ListRevocations(self, request: pb.ListRevocationsRequest, context) -> pb.ListRevocationsResponse:
        since = request.since.seconds + request.since.nanos / 1e9 if request.HasField("since") else None
        found, listed_at = await revocations.in_force(self.deps.db, since)
        resp = pb.ListRevocationsResponse()
        for r in found:
            item = resp.revocations.add(
                kind=pb.Revocation.KIND_SESSION if r.kind == SESSION else pb.Revocation.KIND_MEMBERSHIP,
                organization_id=str(r.organization_id), subject_id=r.subject_id)
            _ts(item.not_before, r.not_before)
            _ts(item.expire_time, r.expires_at)
        _ts(resp.list_time, listed_at)
        return resp
