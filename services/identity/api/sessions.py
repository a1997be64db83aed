"""SessionService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.identity.v1 import session_service_pb2_grpc

from services.identity.handlers.deps import Deps


class SessionServicer(session_service_pb2_grpc.SessionServiceServicer):
    def __init__(self, deps: Deps):
        self.deps = deps
