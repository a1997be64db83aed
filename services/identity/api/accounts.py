"""AccountService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.identity.v1 import account_service_pb2 as pb
from givance.identity.v1 import account_service_pb2_grpc

from chassis import context
from chassis.convert import date, timestamp
from services.identity.domain import kyc as kyc_rules
from services.identity.handlers.account import SelfService
from services.identity.handlers.deps import Deps

_STATUS_TO_PROTO = {
    kyc_rules.PENDING: pb.KYC_STATUS_PENDING,
    kyc_rules.VERIFIED: pb.KYC_STATUS_VERIFIED,
    kyc_rules.REJECTED: pb.KYC_STATUS_REJECTED,
}
_STATUS_FROM_PROTO = {v: k for k, v in _STATUS_TO_PROTO.items()}


def kyc_to_proto(row: dict) -> pb.Kyc:
    """The KYC part of an account; the national id only masked, never in clear."""
    submitted = row["kyc_submitted_at"] is not None
    return pb.Kyc(
        date_of_birth=date(row["date_of_birth"]),
        national_id=kyc_rules.mask(row["national_id_last4"]),
        national_id_type=row["national_id_type"] or "",
        address=row["address"] or "",
        city=row["city"] or "",
        state=row["state"] or "",
        postal_code=row["postal_code"] or "",
        country=row["country"] or "",
        emergency_contact_name=row["emergency_contact_name"] or "",
        emergency_contact_phone=row["emergency_contact_phone"] or "",
        emergency_contact_relation=row["emergency_contact_relation"] or "",
        id_document_url=row["id_document_url"] or "",
        address_proof_url=row["address_proof_url"] or "",
        status=_STATUS_TO_PROTO.get(row["kyc_status"], pb.KYC_STATUS_UNSPECIFIED) if submitted
        else pb.KYC_STATUS_UNSPECIFIED,
        verify_time=timestamp(row["kyc_verified_at"]),
        rejection_reason=row["kyc_rejection_reason"] or "",
    )


def account_to_proto(row: dict) -> pb.Account:
    return pb.Account(
        id=str(row["id"]),
        email=row["email"],
        email_verified=row["email_verified_at"] is not None,
        first_name=row["first_name"],
        last_name=row["last_name"],
        phone=row["phone"] or "",
        phone_verified=row["phone_verified_at"] is not None,
        mfa_enabled=bool(row["mfa_enabled"]),
        default_organization_id=str(row["default_organization_id"] or ""),
        kyc=kyc_to_proto(row),
        create_time=timestamp(row["created_at"]),
    )


def kyc_from_proto(k: pb.Kyc) -> kyc_rules.KycInput:
    dob = k.date_of_birth
    return kyc_rules.KycInput(
        date_of_birth=(dob.year, dob.month, dob.day) if k.HasField("date_of_birth") else None,
        national_id=k.national_id,
        national_id_type=k.national_id_type,
        address=k.address,
        city=k.city,
        state=k.state,
        postal_code=k.postal_code,
        country=k.country,
        emergency_contact_name=k.emergency_contact_name,
        emergency_contact_phone=k.emergency_contact_phone,
        emergency_contact_relation=k.emergency_contact_relation,
        id_document_url=k.id_document_url,
        address_proof_url=k.address_proof_url,
    )


class AccountServicer(account_service_pb2_grpc.AccountServiceServicer):
    def __init__(self, deps: Deps):
        self.deps = deps
        self.accounts = SelfService(deps)

    async def GetAccount(self, request: pb.GetAccountRequest, ctx) -> pb.GetAccountResponse:
        c = context.current()
        return pb.GetAccountResponse(account=account_to_proto(await self.accounts.get_account(c.tenant_id,
                                                                                              c.principal)))

    async def RequestEmailVerification(self, request: pb.RequestEmailVerificationRequest,
                                       ctx) -> pb.RequestEmailVerificationResponse:
        c = context.current()
        await self.accounts.request_email_verification(c.tenant_id, c.principal)
        return pb.RequestEmailVerificationResponse()

    async def VerifyEmail(self, request: pb.VerifyEmailRequest, ctx) -> pb.VerifyEmailResponse:
        await self.accounts.verify_email(request.token)
        return pb.VerifyEmailResponse()

    async def RequestPasswordReset(self, request: pb.RequestPasswordResetRequest,
                                   ctx) -> pb.RequestPasswordResetResponse:
        await self.accounts.request_password_reset(request.email)
        return pb.RequestPasswordResetResponse()

    async def ResetPassword(self, request: pb.ResetPasswordRequest, ctx) -> pb.ResetPasswordResponse:
        await self.accounts.reset_password(request.token, request.new_password)
        return pb.ResetPasswordResponse()

    async def ChangePassword(self, request: pb.ChangePasswordRequest, ctx) -> pb.ChangePasswordResponse:
        c = context.current()
        await self.accounts.change_password(c.tenant_id, c.principal, request.current_password, request.new_password)
        return pb.ChangePasswordResponse()

    async def RequestPhoneVerification(self, request: pb.RequestPhoneVerificationRequest,
                                       ctx) -> pb.RequestPhoneVerificationResponse:
        c = context.current()
        expires = await self.accounts.request_phone_verification(c.tenant_id, c.principal, request.phone)
        return pb.RequestPhoneVerificationResponse(expire_time=timestamp(expires))

    async def VerifyPhone(self, request: pb.VerifyPhoneRequest, ctx) -> pb.VerifyPhoneResponse:
        c = context.current()
        account = await self.accounts.verify_phone(c.tenant_id, c.principal, request.code)
        return pb.VerifyPhoneResponse(account=account_to_proto(account))

    async def UpdateKyc(self, request: pb.UpdateKycRequest, ctx) -> pb.UpdateKycResponse:
        c = context.current()
        account = await self.accounts.update_kyc(c.tenant_id, c.principal, kyc_from_proto(request.kyc))
        return pb.UpdateKycResponse(account=account_to_proto(account))

    async def ReviewKyc(self, request: pb.ReviewKycRequest, ctx) -> pb.ReviewKycResponse:
        c = context.current()
        account = await self.accounts.review_kyc(c.tenant_id, c.principal, request.user_id,
                                                 _STATUS_FROM_PROTO.get(request.status, ""),
                                                 request.rejection_reason)
        return pb.ReviewKycResponse(kyc=kyc_to_proto(account))
