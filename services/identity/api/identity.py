"""IdentityService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.identity.v1 import identity_service_pb2 as pb
from givance.identity.v1 import identity_service_pb2_grpc, user_pb2

from chassis.convert import timestamp
from services.identity.api.caller import caller, client
from services.identity.api.organizations import org_to_proto
from services.identity.handlers import organizations, sessions, sign_in, tokens
from services.identity.handlers.deps import Deps
from services.identity.handlers.mfa import MfaChallenge
from services.identity.handlers.sign_in import User
from services.identity.handlers.tokens import Tokens


def tokens_to_proto(t: Tokens) -> user_pb2.TokenPair:
    return user_pb2.TokenPair(
        access_token=t.access_token,
        access_token_expire_time=timestamp(t.access_expires_at),
        refresh_token=t.refresh_token,
        refresh_token_expire_time=timestamp(t.refresh_expires_at),
        token_type="Bearer",
        user_id=str(t.user_id),
        organization_id=str(t.organization_id),
        role=t.role,
    )


def _user(row: User) -> user_pb2.User:
    return user_pb2.User(
        id=str(row.id), email=row.email, first_name=row.first_name, last_name=row.last_name,
        default_organization_id=str(row.default_organization_id or ""), create_time=timestamp(row.created_at),
    )


class IdentityServicer(identity_service_pb2_grpc.IdentityServiceServicer):
    def __init__(self, deps: Deps):
        self.deps = deps

    async def SignUp(self, request: pb.SignUpRequest, ctx) -> pb.SignUpResponse:
        result = await sign_in.sign_up(
            self.deps,
            email=request.email, password=request.password, first_name=request.first_name,
            last_name=request.last_name, organization_name=request.organization_name,
            organization_slug=request.organization_slug, request_id=request.request_id,
        )
        return pb.SignUpResponse(user=_user(result.user), organization=org_to_proto(result.organization),
                                 tokens=tokens_to_proto(result.tokens))

    async def Login(self, request: pb.LoginRequest, ctx) -> pb.LoginResponse:
        result = await sign_in.login(self.deps, client(), email=request.email, password=request.password,
                                     organization_id=request.organization_id, device_token=request.device_token)
        if isinstance(result, MfaChallenge):
            return pb.LoginResponse(mfa_challenge=pb.MfaChallenge(
                challenge_token=result.challenge_token, expire_time=timestamp(result.expires_at)))
        return pb.LoginResponse(tokens=tokens_to_proto(result))

    async def VerifyMfa(self, request: pb.VerifyMfaRequest, ctx) -> pb.VerifyMfaResponse:
        result = await sign_in.verify_mfa(
            self.deps, client(), challenge_token=request.challenge_token, code=request.code,
            trust_device=request.trust_device, device_name=request.device_name)
        return pb.VerifyMfaResponse(tokens=tokens_to_proto(result.tokens), device_token=result.device_token)

    async def RefreshToken(self, request: pb.RefreshTokenRequest, ctx) -> pb.RefreshTokenResponse:
        refreshed = await sign_in.refresh(self.deps, client(), request.refresh_token)
        return pb.RefreshTokenResponse(tokens=tokens_to_proto(refreshed))

    async def Logout(self, request: pb.LogoutRequest, ctx) -> pb.LogoutResponse:
        principal, _ = caller()
        await sessions.logout(self.deps, principal)
        return pb.LogoutResponse()

    async def SwitchOrganization(self, request: pb.SwitchOrganizationRequest, ctx) -> pb.SwitchOrganizationResponse:
        principal, _ = caller()
        switched = await organizations.switch(self.deps, principal, request.organization_id, request.make_default)
        return pb.SwitchOrganizationResponse(tokens=tokens_to_proto(switched))

    async def IssueServiceToken(self, request: pb.IssueServiceTokenRequest, ctx) -> pb.IssueServiceTokenResponse:
        token, expires_at = await tokens.issue_service_token(self.deps, request.client_id, request.client_secret)
        return pb.IssueServiceTokenResponse(access_token=token, expire_time=timestamp(expires_at))

    async def GetJwks(self, request: pb.GetJwksRequest, ctx) -> pb.GetJwksResponse:
        keys = await self.deps.keys.jwks()
        return pb.GetJwksResponse(keys=[user_pb2.Jwk(**{k: v for k, v in key.items() if k in
                                                       ("kid", "kty", "crv", "x", "alg", "use")}) for key in keys])
