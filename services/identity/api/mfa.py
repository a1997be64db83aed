"""MfaService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.identity.v1 import mfa_service_pb2 as pb
from givance.identity.v1 import mfa_service_pb2_grpc

from chassis.convert import timestamp
from services.identity.api.caller import caller, client
from services.identity.handlers import mfa
from services.identity.handlers.deps import Deps
from services.identity.handlers.mfa import TrustedDevice


def _device(row: TrustedDevice) -> pb.TrustedDevice:
    return pb.TrustedDevice(
        id=str(row.id), name=row.device_name or "", ip_address=row.ip_address or "",
        user_agent=row.user_agent or "", create_time=timestamp(row.created_at),
        last_use_time=timestamp(row.last_used_at), expire_time=timestamp(row.expires_at),
    )


class MfaServicer(mfa_service_pb2_grpc.MfaServiceServicer):
    def __init__(self, deps: Deps):
        self.deps = deps

    async def EnrollTotp(self, request: pb.EnrollTotpRequest, ctx) -> pb.EnrollTotpResponse:
        enrollment = await mfa.enroll_totp(self.deps, *caller(), client=client(),
                                           current_password=request.current_password)
        return pb.EnrollTotpResponse(otpauth_uri=enrollment.otpauth_uri, secret=enrollment.secret)

    async def ConfirmTotp(self, request: pb.ConfirmTotpRequest, ctx) -> pb.ConfirmTotpResponse:
        return pb.ConfirmTotpResponse(backup_codes=await mfa.confirm_totp(self.deps, *caller(), request.code))

    async def DisableMfa(self, request: pb.DisableMfaRequest, ctx) -> pb.DisableMfaResponse:
        await mfa.disable(self.deps, *caller(), request.code, client=client(),
                          current_password=request.current_password)
        return pb.DisableMfaResponse()

    async def RegenerateBackupCodes(self, request: pb.RegenerateBackupCodesRequest,
                                    ctx) -> pb.RegenerateBackupCodesResponse:
        codes = await mfa.regenerate_backup_codes(self.deps, *caller(), request.code, client=client(),
                                                  current_password=request.current_password)
        return pb.RegenerateBackupCodesResponse(backup_codes=codes)

    async def ListTrustedDevices(self, request: pb.ListTrustedDevicesRequest, ctx) -> pb.ListTrustedDevicesResponse:
        devices = await mfa.list_devices(self.deps.db, *caller())
        return pb.ListTrustedDevicesResponse(devices=[_device(d) for d in devices])

    async def RevokeTrustedDevice(self, request: pb.RevokeTrustedDeviceRequest,
                                  ctx) -> pb.RevokeTrustedDeviceResponse:
        await mfa.revoke_device(self.deps.db, *caller(), request.id)
        return pb.RevokeTrustedDeviceResponse()
