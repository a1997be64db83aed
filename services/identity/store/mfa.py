"""identity's MFA SQL: user_mfa and trusted_devices (per user, global), mfa_challenges (per tenant).

user_mfa and trusted_devices belong to a user, not to an organization, so they carry no RLS;
every query here filters on the user id the handler took from a verified principal or from a
challenge found under the tenant's RLS.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text

from chassis.db import Connection

_MFA_COLUMNS = ("user_id, totp_secret_sealed, enabled, confirmed_at, totp_last_step, backup_code_hashes, "
                "backup_codes_used, failed_attempts, coalesce(locked_until > now(), false) AS locked")


async def mfa_for_update(conn: Connection, user_id: uuid.UUID) -> dict[str, Any] | None:
    row = (await conn.execute(
        text(f"SELECT {_MFA_COLUMNS} FROM identity.user_mfa WHERE user_id = :u FOR UPDATE"),
        {"u": user_id},
    )).mappings().first()
    return dict(row) if row else None


async def mfa_enabled(conn: Connection, user_id: uuid.UUID) -> bool:
    return bool((await conn.execute(
        text("SELECT enabled FROM identity.user_mfa WHERE user_id = :u"), {"u": user_id},
    )).scalar())


async def start_enrollment(conn: Connection, user_id: uuid.UUID, sealed_secret: str) -> bool:
    """A new pending TOTP secret (replacing an unconfirmed one); False when MFA is already on."""
    result = await conn.execute(
        text("INSERT INTO identity.user_mfa (user_id, totp_secret_sealed) VALUES (:u, :s) "
             "ON CONFLICT (user_id) DO UPDATE SET totp_secret_sealed = EXCLUDED.totp_secret_sealed, "
             "totp_last_step = 0, backup_code_hashes = '{}', backup_codes_used = '{}', confirmed_at = NULL, "
             "updated_at = now() WHERE NOT identity.user_mfa.enabled"),
        {"u": user_id, "s": sealed_secret},
    )
    return result.rowcount == 1


async def enable(conn: Connection, user_id: uuid.UUID, step: int, backup_hashes: list[str]) -> None:
    await conn.execute(
        text("UPDATE identity.user_mfa SET enabled = true, confirmed_at = now(), totp_last_step = :step, "
             "backup_code_hashes = :codes, backup_codes_used = '{}', failed_attempts = 0, locked_until = NULL, "
             "last_verified_at = now(), updated_at = now() WHERE user_id = :u"),
        {"u": user_id, "step": step, "codes": backup_hashes},
    )


async def accept_totp_step(conn: Connection, user_id: uuid.UUID, step: int) -> None:
    await conn.execute(
        text("UPDATE identity.user_mfa SET totp_last_step = :step, failed_attempts = 0, locked_until = NULL, "
             "last_verified_at = now(), updated_at = now() WHERE user_id = :u AND totp_last_step < :step"),
        {"u": user_id, "step": step},
    )


async def spend_backup_code(conn: Connection, user_id: uuid.UUID, entry: str) -> bool:
    """Moves one stored backup code to the used list; False if it was not (or no longer) there."""
    result = await conn.execute(
        text("UPDATE identity.user_mfa SET backup_code_hashes = array_remove(backup_code_hashes, :e), "
             "backup_codes_used = array_append(backup_codes_used, :e), failed_attempts = 0, locked_until = NULL, "
             "last_verified_at = now(), updated_at = now() WHERE user_id = :u AND :e = ANY(backup_code_hashes)"),
        {"u": user_id, "e": entry},
    )
    return result.rowcount == 1


async def replace_backup_codes(conn: Connection, user_id: uuid.UUID, backup_hashes: list[str]) -> None:
    await conn.execute(
        text("UPDATE identity.user_mfa SET backup_code_hashes = :codes, backup_codes_used = '{}', "
             "updated_at = now() WHERE user_id = :u"),
        {"u": user_id, "codes": backup_hashes},
    )


async def record_failure(conn: Connection, user_id: uuid.UUID, max_failures: int, lock_seconds: int) -> bool:
    """Counts a wrong code; the max-th in a row locks code checks. True when this one locked them."""
    locked = (await conn.execute(
        text("UPDATE identity.user_mfa SET "
             "failed_attempts = CASE WHEN failed_attempts + 1 >= :max THEN 0 ELSE failed_attempts + 1 END, "
             "locked_until = CASE WHEN failed_attempts + 1 >= :max "
             "  THEN now() + make_interval(secs => :lock) ELSE locked_until END, "
             "updated_at = now() WHERE user_id = :u RETURNING locked_until > now()"),
        {"u": user_id, "max": max_failures, "lock": float(lock_seconds)},
    )).scalar()
    return bool(locked)


async def delete(conn: Connection, user_id: uuid.UUID) -> None:
    await conn.execute(text("DELETE FROM identity.user_mfa WHERE user_id = :u"), {"u": user_id})


async def user_email(conn: Connection, user_id: uuid.UUID) -> str | None:
    return (await conn.execute(
        text("SELECT email FROM identity.users WHERE id = :u AND deleted_at IS NULL AND is_active"),
        {"u": user_id},
    )).scalar()


async def organization_requires_mfa(conn: Connection, org_id: uuid.UUID) -> bool:
    """The tenant must be org_id (organizations are under RLS)."""
    return bool((await conn.execute(
        text("SELECT mfa_required FROM identity.organizations WHERE id = :o AND deleted_at IS NULL"),
        {"o": org_id},
    )).scalar())


async def enrollment_pending(conn: Connection, user_id: uuid.UUID, org_id: uuid.UUID) -> bool:
    """The organization requires MFA and the user has not enabled it (tenant org_id: RLS)."""
    return bool((await conn.execute(
        text("SELECT o.mfa_required AND NOT coalesce(m.enabled, false) FROM identity.organizations o "
             "LEFT JOIN identity.user_mfa m ON m.user_id = :u WHERE o.id = :o"),
        {"u": user_id, "o": org_id},
    )).scalar())


# -- login challenges (tenant rows) -------------------------------------------------------------


async def insert_challenge(conn: Connection, org_id: uuid.UUID, user_id: uuid.UUID, challenge_hash: bytes,
                           expires_at: datetime) -> None:
    await conn.execute(
        text("INSERT INTO identity.mfa_challenges (organization_id, user_id, challenge_hash, expires_at) "
             "VALUES (:o, :u, :h, :e)"),
        {"o": org_id, "u": user_id, "h": challenge_hash, "e": expires_at},
    )


async def challenge_for_update(conn: Connection, challenge_hash: bytes) -> dict[str, Any] | None:
    row = (await conn.execute(
        text("SELECT id, organization_id, user_id, attempts, used_at, expires_at <= now() AS expired "
             "FROM identity.mfa_challenges WHERE challenge_hash = :h FOR UPDATE"),
        {"h": challenge_hash},
    )).mappings().first()
    return dict(row) if row else None


async def count_challenge_attempt(conn: Connection, challenge_id: uuid.UUID) -> int:
    return (await conn.execute(
        text("UPDATE identity.mfa_challenges SET attempts = attempts + 1, updated_at = now() "
             "WHERE id = :id RETURNING attempts"),
        {"id": challenge_id},
    )).scalar()


async def mark_challenge_used(conn: Connection, challenge_id: uuid.UUID) -> None:
    await conn.execute(
        text("UPDATE identity.mfa_challenges SET used_at = now(), updated_at = now() WHERE id = :id"),
        {"id": challenge_id},
    )


# -- trusted devices (per user) -----------------------------------------------------------------

_DEVICE_COLUMNS = "id, device_name, ip_address, user_agent, created_at, last_used_at, expires_at"


@dataclass(frozen=True, slots=True)
class TrustedDevice:
    id: uuid.UUID
    device_name: str | None
    ip_address: str | None
    user_agent: str | None
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime


async def insert_device(conn: Connection, user_id: uuid.UUID, device_hash: bytes, name: str, ip: str,
                        user_agent: str, expires_at: datetime) -> TrustedDevice:
    row = (await conn.execute(
        text("INSERT INTO identity.trusted_devices (user_id, device_hash, device_name, ip_address, user_agent, "
             f"expires_at, last_used_at) VALUES (:u, :h, :n, :ip, :ua, :e, now()) RETURNING {_DEVICE_COLUMNS}"),
        {"u": user_id, "h": device_hash, "n": name or None, "ip": ip or None, "ua": user_agent or None,
         "e": expires_at},
    )).mappings().one()
    return TrustedDevice(**dict(row))


async def use_device(conn: Connection, user_id: uuid.UUID, device_hash: bytes) -> bool:
    """True when the token is this user's device, not revoked and not expired (and notes the use)."""
    result = await conn.execute(
        text("UPDATE identity.trusted_devices SET last_used_at = now(), updated_at = now() "
             "WHERE device_hash = :h AND user_id = :u AND revoked_at IS NULL AND expires_at > now()"),
        {"u": user_id, "h": device_hash},
    )
    return result.rowcount == 1


async def list_devices(conn: Connection, user_id: uuid.UUID) -> list[TrustedDevice]:
    rows = (await conn.execute(
        text(f"SELECT {_DEVICE_COLUMNS} FROM identity.trusted_devices "
             "WHERE user_id = :u AND revoked_at IS NULL AND expires_at > now() ORDER BY created_at DESC, id"),
        {"u": user_id},
    )).mappings().all()
    return [TrustedDevice(**dict(r)) for r in rows]


async def revoke_device(conn: Connection, user_id: uuid.UUID, device_id: uuid.UUID) -> TrustedDevice | None:
    row = (await conn.execute(
        text("UPDATE identity.trusted_devices SET revoked_at = now(), updated_at = now() "
             f"WHERE id = :id AND user_id = :u AND revoked_at IS NULL RETURNING {_DEVICE_COLUMNS}"),
        {"u": user_id, "id": device_id},
    )).mappings().first()
    return TrustedDevice(**dict(row)) if row else None


async def revoke_all_devices(conn: Connection, user_id: uuid.UUID) -> int:
    result = await conn.execute(
        text("UPDATE identity.trusted_devices SET revoked_at = now(), updated_at = now() "
             "WHERE user_id = :u AND revoked_at IS NULL"),
        {"u": user_id},
    )
    return result.rowcount
