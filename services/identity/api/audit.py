"""AuditService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.identity.v1 import audit_service_pb2_grpc

from services.identity.handlers.deps import Deps


class AuditServicer(audit_service_pb2_grpc.AuditServiceServicer):
    def __init__(self, deps: Deps):
        self.deps = deps
