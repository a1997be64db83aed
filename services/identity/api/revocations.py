"""RevocationService: the revocations in force, listed for the other services' verifiers."""

from __future__ import annotations

import math

from givance.identity.v1 import revocation_service_pb2 as pb
from givance.identity.v1 import revocation_service_pb2_grpc

from chassis.revocation import MEMBERSHIP, ORGANIZATION, SESSION
from services.identity.handlers import revocations
from services.identity.handlers.deps import Deps

_KINDS = {MEMBERSHIP: pb.Revocation.KIND_MEMBERSHIP, SESSION: pb.Revocation.KIND_SESSION,
          ORGANIZATION: pb.Revocation.KIND_ORGANIZATION}


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
            item = resp.revocations.add(kind=_KINDS[r.kind], organization_id=str(r.organization_id),
                                        subject_id=r.subject_id)
            _ts(item.not_before, r.not_before)
            if not math.isinf(r.expires_at):  # unset: a suspension that lasts
                _ts(item.expire_time, r.expires_at)
        _ts(resp.list_time, listed_at)
        return resp
