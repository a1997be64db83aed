"""MfaService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.identity.v1 import mfa_service_pb2_grpc

from services.identity.handlers.deps import Deps


class MfaServicer(mfa_service_pb2_grpc.MfaServiceServicer):
    def __init__(self, deps: Deps):
        self.deps = deps
