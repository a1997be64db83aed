"""StaffService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.identity.v1 import staff_service_pb2_grpc

from services.identity.handlers.deps import Deps


class StaffServicer(staff_service_pb2_grpc.StaffServiceServicer):
    def __init__(self, deps: Deps):
        self.deps = deps
