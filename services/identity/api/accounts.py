"""AccountService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.identity.v1 import account_service_pb2 as pb
from givance.identity.v1 import account_service_pb2_grpc

from chassis.convert import date, timestamp
from chassis.resource import etag
from services.identity.api.caller import caller, client
from services.identity.handlers import profiles
from services.identity.handlers import self_service as handlers
from services.identity.handlers.deps import Deps
from services.identity.handlers.self_service import Account, KycInput

_STATUS_TO_PROTO = {
    "pending": pb.KYC_STATUS_PENDING,
    "verified": pb.KYC_STATUS_VERIFIED,
    "rejected": pb.KYC_STATUS_REJECTED,
}
_STATUS_FROM_PROTO = {v: k for k, v in _STATUS_TO_PROTO.items()}


def kyc_to_proto(row: Account) -> pb.Kyc:
    """The KYC part of an account; the national id only masked, never in clear."""
    submitted = row.kyc_submitted_at is not None
    return pb.Kyc(
        date_of_birth=date(row.date_of_birth),
        national_id=row.national_id_masked,
        national_id_type=row.national_id_type or "",
        address=row.address or "",
        city=row.city or "",
        state=row.state or "",
        postal_code=row.postal_code or "",
        country=row.country or "",
        emergency_contact_name=row.emergency_contact_name or "",
        emergency_contact_phone=row.emergency_contact_phone or "",
        emergency_contact_relation=row.emergency_contact_relation or "",
        id_document_url=row.id_document_url or "",
        address_proof_url=row.address_proof_url or "",
        status=_STATUS_TO_PROTO.get(row.kyc_status, pb.KYC_STATUS_UNSPECIFIED) if submitted
        else pb.KYC_STATUS_UNSPECIFIED,
        verify_time=timestamp(row.kyc_verified_at),
        rejection_reason=row.kyc_rejection_reason or "",
    )


def account_to_proto(row: Account) -> pb.Account:
    return pb.Account(
        id=str(row.id),
        email=row.email,
        email_verified=row.email_verified_at is not None,
        first_name=row.first_name,
        last_name=row.last_name,
        phone=row.phone or "",
        phone_verified=row.phone_verified_at is not None,
        mfa_enabled=bool(row.mfa_enabled),
        default_organization_id=str(row.default_organization_id or ""),
        kyc=kyc_to_proto(row),
        create_time=timestamp(row.created_at),
        username=row.username or "",
        avatar_url=row.avatar_url,
        country_code=row.country_code,
        etag=etag(row.version),
    )


def kyc_from_proto(k: pb.Kyc) -> KycInput:
    dob = k.date_of_birth
    return KycInput(
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

    async def UpdateAccount(self, request: pb.UpdateAccountRequest, ctx) -> pb.UpdateAccountResponse:
        principal, tenant = caller()
        a = request.account
        raw = {f: getattr(a, f) for f in ("first_name", "last_name", "username", "avatar_url", "country_code")}
        row = await profiles.update_account(self.deps.db, principal, tenant, raw=raw, etag=a.etag,
                                            mask=list(request.update_mask.paths))
        return pb.UpdateAccountResponse(account=account_to_proto(row))

    async def GetAccount(self, request: pb.GetAccountRequest, ctx) -> pb.GetAccountResponse:
        principal, tenant = caller()
        return pb.GetAccountResponse(account=account_to_proto(
            await handlers.get_account(self.deps.db, principal, tenant)))

    async def RequestEmailVerification(self, request: pb.RequestEmailVerificationRequest,
                                       ctx) -> pb.RequestEmailVerificationResponse:
        principal, tenant = caller()
        await handlers.request_email_verification(self.deps, client(), principal, tenant)
        return pb.RequestEmailVerificationResponse()

    async def VerifyEmail(self, request: pb.VerifyEmailRequest, ctx) -> pb.VerifyEmailResponse:
        await handlers.verify_email(self.deps.db, request.token)
        return pb.VerifyEmailResponse()

    async def RequestPasswordReset(self, request: pb.RequestPasswordResetRequest,
                                   ctx) -> pb.RequestPasswordResetResponse:
        await handlers.request_password_reset(self.deps, client(), request.email)
        return pb.RequestPasswordResetResponse()

    async def ResetPassword(self, request: pb.ResetPasswordRequest, ctx) -> pb.ResetPasswordResponse:
        await handlers.reset_password(self.deps, request.token, request.new_password)
        return pb.ResetPasswordResponse()

    async def ChangePassword(self, request: pb.ChangePasswordRequest, ctx) -> pb.ChangePasswordResponse:
        principal, tenant = caller()
        await handlers.change_password(self.deps, client(), principal, tenant, request.current_password,
                                       request.new_password)
        return pb.ChangePasswordResponse()

    async def RequestPhoneVerification(self, request: pb.RequestPhoneVerificationRequest,
                                       ctx) -> pb.RequestPhoneVerificationResponse:
        principal, tenant = caller()
        expires = await handlers.request_phone_verification(self.deps, client(), principal, tenant,
                                                             request.phone)
        return pb.RequestPhoneVerificationResponse(expire_time=timestamp(expires))

    async def VerifyPhone(self, request: pb.VerifyPhoneRequest, ctx) -> pb.VerifyPhoneResponse:
        principal, tenant = caller()
        account = await handlers.verify_phone(self.deps.db, principal, tenant, request.code)
        return pb.VerifyPhoneResponse(account=account_to_proto(account))

    async def UpdateKyc(self, request: pb.UpdateKycRequest, ctx) -> pb.UpdateKycResponse:
        principal, tenant = caller()
        account = await handlers.update_kyc(self.deps, principal, tenant, kyc_from_proto(request.kyc))
        return pb.UpdateKycResponse(account=account_to_proto(account))

    async def ReviewKyc(self, request: pb.ReviewKycRequest, ctx) -> pb.ReviewKycResponse:
        principal, tenant = caller()
        account = await handlers.review_kyc(self.deps.db, principal, tenant, request.user_id,
                                            _STATUS_FROM_PROTO.get(request.status, ""), request.rejection_reason)
        return pb.ReviewKycResponse(kyc=kyc_to_proto(account))
