"""MembershipService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.identity.v1 import membership_service_pb2_grpc

from services.identity.handlers.deps import Deps


class MembershipServicer(membership_service_pb2_grpc.MembershipServiceServicer):
    def __init__(self, deps: Deps):
        self.deps = deps
