"""SessionService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.identity.v1 import session_service_pb2 as pb
from givance.identity.v1 import session_service_pb2_grpc

from chassis.convert import timestamp
from services.identity.api.caller import caller
from services.identity.handlers import service_accounts, sessions
from services.identity.handlers.deps import Deps
from services.identity.handlers.service_accounts import ServiceAccount
from services.identity.handlers.sessions import Session


def _session(row: Session, org: str) -> pb.Session:
    return pb.Session(id=str(row.family_id), organization_id=org, create_time=timestamp(row.session_created_at),
                      last_use_time=timestamp(row.last_used_at), expire_time=timestamp(row.expires_at),
                      current=row.current)


def _account(row: ServiceAccount) -> pb.ServiceAccount:
    return pb.ServiceAccount(id=str(row.id), name=row.name, client_id=row.client_id,
                             permissions=list(row.permissions), create_time=timestamp(row.created_at))


class SessionServicer(session_service_pb2_grpc.SessionServiceServicer):
    def __init__(self, deps: Deps):
        self.deps = deps

    async def ListSessions(self, request: pb.ListSessionsRequest, ctx) -> pb.ListSessionsResponse:
        principal, _ = caller()
        rows = await sessions.list_sessions(self.deps.db, principal)
        return pb.ListSessionsResponse(sessions=[_session(r, str(principal.tenant_id)) for r in rows])

    async def RevokeSession(self, request: pb.RevokeSessionRequest, ctx) -> pb.RevokeSessionResponse:
        await sessions.revoke_session(self.deps, caller()[0], request.id)
        return pb.RevokeSessionResponse()

    async def CreateServiceAccount(self, request: pb.CreateServiceAccountRequest,
                                   ctx) -> pb.CreateServiceAccountResponse:
        row, secret = await service_accounts.create(self.deps.db, caller()[0], request.name,
                                                    list(request.permissions))
        return pb.CreateServiceAccountResponse(service_account=_account(row), client_secret=secret)

    async def ListServiceAccounts(self, request: pb.ListServiceAccountsRequest,
                                  ctx) -> pb.ListServiceAccountsResponse:
        rows = await service_accounts.list_accounts(self.deps.db, caller()[1])
        return pb.ListServiceAccountsResponse(service_accounts=[_account(r) for r in rows])

    async def DeleteServiceAccount(self, request: pb.DeleteServiceAccountRequest,
                                   ctx) -> pb.DeleteServiceAccountResponse:
        await service_accounts.delete(self.deps, caller()[1], request.id)
        return pb.DeleteServiceAccountResponse()

    async def RotateSigningKey(self, request: pb.RotateSigningKeyRequest, ctx) -> pb.RotateSigningKeyResponse:
        return pb.RotateSigningKeyResponse(kid=await self.deps.keys.rotate(caller()[0]))
