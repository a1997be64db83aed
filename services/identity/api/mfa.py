"""MfaService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.identity.v1 import mfa_service_pb2 as pb
from givance.identity.v1 import mfa_service_pb2_grpc

from chassis.convert import timestamp
from services.identity.handlers.deps import Deps
from services.identity.handlers.mfa import Mfa


def _device(row: dict) -> pb.TrustedDevice:
    return pb.TrustedDevice(
        id=str(row["id"]), name=row["device_name"] or "", ip_address=row["ip_address"] or "",
        user_agent=row["user_agent"] or "", create_time=timestamp(row["created_at"]),
        last_use_time=timestamp(row["last_used_at"]), expire_time=timestamp(row["expires_at"]),
    )


class MfaServicer(mfa_service_pb2_grpc.MfaServiceServicer):
    def __init__(self, deps: Deps):
        self.deps = deps
        self.mfa = Mfa(deps.db, deps.keyring)

    async def EnrollTotp(self, request: pb.EnrollTotpRequest, ctx) -> pb.EnrollTotpResponse:
        enrollment = await self.mfa.enroll_totp()
        return pb.EnrollTotpResponse(otpauth_uri=enrollment.otpauth_uri, secret=enrollment.secret)

    async def ConfirmTotp(self, request: pb.ConfirmTotpRequest, ctx) -> pb.ConfirmTotpResponse:
        return pb.ConfirmTotpResponse(backup_codes=await self.mfa.confirm_totp(request.code))

    async def DisableMfa(self, request: pb.DisableMfaRequest, ctx) -> pb.DisableMfaResponse:
        await self.mfa.disable(request.code)
        return pb.DisableMfaResponse()

    async def RegenerateBackupCodes(self, request: pb.RegenerateBackupCodesRequest,
                                    ctx) -> pb.RegenerateBackupCodesResponse:
        return pb.RegenerateBackupCodesResponse(backup_codes=await self.mfa.regenerate_backup_codes(request.code))

    async def ListTrustedDevices(self, request: pb.ListTrustedDevicesRequest, ctx) -> pb.ListTrustedDevicesResponse:
        return pb.ListTrustedDevicesResponse(devices=[_device(d) for d in await self.mfa.list_devices()])

    async def RevokeTrustedDevice(self, request: pb.RevokeTrustedDeviceRequest,
                                  ctx) -> pb.RevokeTrustedDeviceResponse:
        await self.mfa.revoke_device(request.id)
        return pb.RevokeTrustedDeviceResponse()
