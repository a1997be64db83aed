"""MFA use cases: TOTP enrollment, backup codes, the login challenge, trusted devices (the
challenge's answer, VerifyMfa, ends a sign-in: handlers/sign_in.py).

The TOTP secret is sealed (AES-256-GCM, associated data = the user id) and opened only to
check a code; backup codes, challenge and device tokens are stored only hashed. Every wrong
code is counted (per challenge and per user) and audited by the unit of work that checked
it, which commits before the caller hears "no" (the error is raised after it).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from chassis.context import Principal
from chassis.db import Database, UnitOfWork
from chassis.errors import (
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Violations,
)
from chassis.resource import parse_id
from services.identity.crypto import Keyring
from services.identity.domain import mfa as rules
from services.identity.handlers import reauth
from services.identity.handlers.caller import Client, require_user
from services.identity.handlers.deps import Deps
from services.identity.store import mfa as store
from services.identity.store.mfa import TrustedDevice

# The clock TOTP codes are checked against (tests pin it to stay clear of step boundaries).
clock: Callable[[], float] = time.time

# Audited actions (identity.<resource>.<what happened>, like the rest of the audit trail).
MFA_ENABLED = "identity.mfa.enabled"
MFA_DISABLED = "identity.mfa.disabled"
BACKUP_CODES_REGENERATED = "identity.mfa.backup_codes_regenerated"
MFA_FAILED = "identity.mfa.verification_failed"
DEVICE_TRUSTED = "identity.trusted_device.created"
DEVICE_REVOKED = "identity.trusted_device.revoked"

BAD_CHALLENGE = "the MFA challenge is invalid or expired; sign in again"
BAD_CODE = "the code is not valid"


@dataclass(frozen=True)
class MfaChallenge:
    """What a login returns instead of tokens when a second factor is due."""

    challenge_token: str
    expires_at: datetime


@dataclass(frozen=True)
class Enrollment:
    otpauth_uri: str
    secret: str


async def login_challenge(uow: UnitOfWork, user_id: uuid.UUID, org_id: uuid.UUID,
                          device_token: str) -> MfaChallenge | None:
    """The MFA step of a login whose password and membership checked out (tenant org_id).

    None means tokens may be issued: the user has no second factor (where the organization
    requires one, tokens.issue_tokens limits the token to enrolling), or the request carries the
    token of a device the user trusted, still valid. Otherwise a challenge: single use, five
    minutes, CHALLENGE_MAX_ATTEMPTS codes.
    """
    if not await store.mfa_enabled(uow.conn, user_id):
        return None
    if device_token and len(device_token) <= rules.TOKEN_MAX and await store.use_device(
            uow.conn, user_id, rules.hash_token(device_token)):
        return None
    token, token_hash = rules.new_challenge_token(org_id)
    expires_at = datetime.now(UTC) + timedelta(seconds=rules.CHALLENGE_TTL_SECONDS)
    await store.insert_challenge(uow.conn, org_id, user_id, token_hash, expires_at)
    return MfaChallenge(challenge_token=token, expires_at=expires_at)


def _user(principal: Principal | None, tenant: uuid.UUID | None) -> tuple[uuid.UUID, uuid.UUID]:
    if principal is None or tenant is None:
        raise Unauthenticated("sign in first")
    return require_user(principal, "only a user has a second factor"), tenant


def _aad(user_id: uuid.UUID) -> bytes:
    return str(user_id).encode()


async def enroll_totp(deps: Deps, principal: Principal, tenant: uuid.UUID | None, *, client: Client = Client(),
                      current_password: str = "") -> Enrollment:
    user_id, tenant_id = _user(principal, tenant)
    await reauth.require(deps, client, principal, user_id, tenant_id, current_password)
    secret = rules.new_totp_secret()
    sealed = deps.keyring.seal(secret.encode(), _aad(user_id))
    async with deps.db.unit_of_work(tenant_id, user_id=user_id) as uow:
        email = await store.user_email(uow.conn, user_id)
        if email is None:
            raise NotFound("user not found")
        if not await store.start_enrollment(uow.conn, user_id, sealed):
            raise FailedPrecondition("MFA is already enabled; disable it before enrolling again",
                                     reason="MFA_ALREADY_ENABLED")
    return Enrollment(otpauth_uri=rules.otpauth_uri(secret, email), secret=secret)


async def confirm_totp(deps: Deps, principal: Principal, tenant: uuid.UUID | None, code: str) -> list[str]:
    v = Violations()
    parsed = rules.parse_code(code, "code", v, totp_only=True)
    v.raise_if_any()
    assert parsed is not None
    user_id, tenant_id = _user(principal, tenant)
    codes: list[str] = []
    async with deps.db.unit_of_work(tenant_id, user_id=user_id) as uow:
        row = await store.mfa_for_update(uow.conn, user_id)
        if row is None or row["totp_secret_sealed"] is None:
            raise FailedPrecondition("no TOTP enrollment to confirm; call EnrollTotp first",
                                     reason="MFA_NOT_ENROLLED")
        if row["enabled"]:
            raise FailedPrecondition("MFA is already enabled", reason="MFA_ALREADY_ENABLED")
        refuse_if_locked(row)
        step = rules.accepted_step(_secret(deps.keyring, row, user_id), parsed.value, clock(), row["totp_last_step"])
        if step is None:
            await _failed(uow, user_id, "confirm_totp", parsed)
        else:
            codes = rules.new_backup_codes()
            await store.enable(uow.conn, user_id, step, [rules.hash_backup_code(c) for c in codes])
            uow.audit(MFA_ENABLED, "user", str(user_id), after={"method": "totp"})
    if not codes:
        raise PermissionDenied(BAD_CODE, reason="MFA_CODE_INVALID")
    return codes


async def disable(deps: Deps, principal: Principal, tenant: uuid.UUID | None, code: str, *,
                  client: Client = Client(), current_password: str = "") -> None:
    parsed = _required_code(code)
    user_id, tenant_id = _user(principal, tenant)
    await reauth.require(deps, client, principal, user_id, tenant_id, current_password)
    async with deps.db.unit_of_work(tenant_id, user_id=user_id) as uow:
        if await store.organization_requires_mfa(uow.conn, tenant_id):
            raise FailedPrecondition("this organization requires MFA", reason="MFA_REQUIRED_BY_ORGANIZATION")
        row = await _enabled_row(uow, user_id)
        ok = await check_code(deps.keyring, uow, user_id, row, parsed, "disable_mfa")
        if ok:
            await store.delete(uow.conn, user_id)
            revoked = await store.revoke_all_devices(uow.conn, user_id)
            uow.audit(MFA_DISABLED, "user", str(user_id), after={"trusted_devices_revoked": revoked})
    if not ok:
        raise PermissionDenied(BAD_CODE, reason="MFA_CODE_INVALID")


async def regenerate_backup_codes(deps: Deps, principal: Principal, tenant: uuid.UUID | None,
                                  code: str, *, client: Client = Client(), current_password: str = "") -> list[str]:
    parsed = _required_code(code)
    user_id, tenant_id = _user(principal, tenant)
    await reauth.require(deps, client, principal, user_id, tenant_id, current_password)
    codes: list[str] = []
    async with deps.db.unit_of_work(tenant_id, user_id=user_id) as uow:
        row = await _enabled_row(uow, user_id)
        if await check_code(deps.keyring, uow, user_id, row, parsed, "regenerate_backup_codes"):
            codes = rules.new_backup_codes()
            await store.replace_backup_codes(uow.conn, user_id, [rules.hash_backup_code(c) for c in codes])
            uow.audit(BACKUP_CODES_REGENERATED, "user", str(user_id), after={"count": len(codes)})
    if not codes:
        raise PermissionDenied(BAD_CODE, reason="MFA_CODE_INVALID")
    return codes


async def list_devices(db: Database, principal: Principal, tenant: uuid.UUID | None) -> list[TrustedDevice]:
    user_id, tenant_id = _user(principal, tenant)
    async with db.unit_of_work(tenant_id, user_id=user_id) as uow:
        return await store.list_devices(uow.conn, user_id)


async def revoke_device(db: Database, principal: Principal, tenant: uuid.UUID | None, device_id: str) -> None:
    wanted = parse_id(device_id, "id")
    user_id, tenant_id = _user(principal, tenant)
    async with db.unit_of_work(tenant_id, user_id=user_id) as uow:
        device = await store.revoke_device(uow.conn, user_id, wanted)
        if device is None:  # another user's device, or none: never confirm it exists
            raise NotFound("trusted device not found")
        uow.audit(DEVICE_REVOKED, "trusted_device", str(wanted),
                  before={"name": device.device_name, "ip_address": device.ip_address})


def _secret(keyring: Keyring, row: dict[str, Any], user_id: uuid.UUID) -> str:
    return keyring.open(row["totp_secret_sealed"], _aad(user_id)).decode()


async def check_code(keyring: Keyring, uow: UnitOfWork, user_id: uuid.UUID, row: dict[str, Any], code: rules.Code,
                 during: str) -> bool:
    """Accepts a TOTP code of a later step than the last accepted, or an unused backup code
    (spent here); anything else is counted and audited as a failure."""
    if code.kind == rules.TOTP:
        step = rules.accepted_step(_secret(keyring, row, user_id), code.value, clock(), row["totp_last_step"])
        if step is not None:
            await store.accept_totp_step(uow.conn, user_id, step)
            return True
    else:
        entry = rules.matching_backup_code(code.value, list(row["backup_code_hashes"]))
        if entry is not None and await store.spend_backup_code(uow.conn, user_id, entry):
            return True
    await _failed(uow, user_id, during, code)
    return False


async def _failed(uow: UnitOfWork, user_id: uuid.UUID, during: str, code: rules.Code) -> None:
    locked = await store.record_failure(uow.conn, user_id, rules.MAX_CONSECUTIVE_FAILURES, rules.LOCK_SECONDS)
    uow.audit(MFA_FAILED, "user", str(user_id), actor_id=str(user_id), actor_kind="user",
              after={"during": during, "method": code.kind, "locked": locked})


def _required_code(code: str) -> rules.Code:
    v = Violations()
    parsed = rules.parse_code(code, "code", v)
    v.raise_if_any()
    assert parsed is not None
    return parsed


async def _enabled_row(uow: UnitOfWork, user_id: uuid.UUID) -> dict[str, Any]:
    row = await store.mfa_for_update(uow.conn, user_id)
    if row is None or not row["enabled"]:
        raise FailedPrecondition("MFA is not enabled", reason="MFA_NOT_ENABLED")
    refuse_if_locked(row)
    return row


def refuse_if_locked(row: dict[str, Any]) -> None:
    if row["locked"]:
        raise ResourceExhausted("too many wrong codes; try again later", reason="MFA_LOCKED")


async def trust_device(uow: UnitOfWork, user_id: uuid.UUID, name: str, client: Client) -> str:
    """A trusted-device token for the second step of a login (the device skips MFA until it expires)."""
    ip, user_agent = client.address, client.user_agent
    token, token_hash = rules.new_device_token()
    expires_at = datetime.now(UTC) + timedelta(seconds=rules.DEVICE_TTL_SECONDS)
    device = await store.insert_device(uow.conn, user_id, token_hash, name, ip, user_agent[:512], expires_at)
    uow.audit(DEVICE_TRUSTED, "trusted_device", str(device.id), actor_id=str(user_id), actor_kind="user",
              after={"name": name, "ip_address": ip, "expires_at": expires_at.isoformat()})
    return token
