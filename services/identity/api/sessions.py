"""SessionService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.identity.v1 import session_service_pb2 as pb
from givance.identity.v1 import session_service_pb2_grpc

from chassis import context
from chassis.convert import timestamp
from services.identity.handlers import service_accounts, sessions
from services.identity.handlers.deps import Deps


def _session(row: dict, org: str) -> pb.Session:
    return pb.Session(id=str(row["family_id"]), organization_id=org, create_time=timestamp(row["session_created_at"]),
                      last_use_time=timestamp(row["last_used_at"]), expire_time=timestamp(row["expires_at"]),
                      current=row["current"])


def _account(row: dict) -> pb.ServiceAccount:
    return pb.ServiceAccount(id=str(row["id"]), name=row["name"], client_id=row["client_id"],
                             permissions=list(row["permissions"]), create_time=timestamp(row["created_at"]))


class SessionServicer(session_service_pb2_grpc.SessionServiceServicer):
    def __init__(self, deps: Deps):
        self.deps = deps

    async def ListSessions(self, request: pb.ListSessionsRequest, ctx) -> pb.ListSessionsResponse:
        principal = context.current().principal
        rows = await sessions.list_sessions(self.deps.db, principal)
        return pb.ListSessionsResponse(sessions=[_session(r, str(principal.tenant_id)) for r in rows])

    async def RevokeSession(self, request: pb.RevokeSessionRequest, ctx) -> pb.RevokeSessionResponse:
        await sessions.revoke_session(self.deps.db, context.current().principal, request.id)
        return pb.RevokeSessionResponse()

    async def CreateServiceAccount(self, request: pb.CreateServiceAccountRequest,
                                   ctx) -> pb.CreateServiceAccountResponse:
        row, secret = await service_accounts.create(self.deps.db, context.current().principal, request.name,
                                                    list(request.permissions))
        return pb.CreateServiceAccountResponse(service_account=_account(row), client_secret=secret)

    async def ListServiceAccounts(self, request: pb.ListServiceAccountsRequest,
                                  ctx) -> pb.ListServiceAccountsResponse:
        rows = await service_accounts.list_accounts(self.deps.db, context.current().tenant_id)
        return pb.ListServiceAccountsResponse(service_accounts=[_account(r) for r in rows])

    async def DeleteServiceAccount(self, request: pb.DeleteServiceAccountRequest,
                                   ctx) -> pb.DeleteServiceAccountResponse:
        await service_accounts.delete(self.deps.db, context.current().tenant_id, request.id, self.deps.revocations)
        return pb.DeleteServiceAccountResponse()

    async def RotateSigningKey(self, request: pb.RotateSigningKeyRequest, ctx) -> pb.RotateSigningKeyResponse:
        return pb.RotateSigningKeyResponse(kid=await self.deps.keys.rotate(context.current().principal))
