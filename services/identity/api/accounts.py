"""AccountService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.identity.v1 import account_service_pb2_grpc

from services.identity.handlers.deps import Deps


class AccountServicer(account_service_pb2_grpc.AccountServiceServicer):
    def __init__(self, deps: Deps):
        self.deps = deps
