"""identity's SQL for a user's own account: verification, password, phone, KYC, and the
single-use tokens sent to them (identity.users and identity.user_tokens are global tables;
a user's refresh tokens are seen through the own_rows policy, app.user_id)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from chassis.db import Connection
from chassis.errors import AlreadyExists
from chassis.sql import by_name, first
from services.identity.domain import kyc as kyc_rules

_ACCOUNT_COLUMNS = (
    "u.id, u.email, u.email_verified_at, u.first_name, u.last_name, u.phone, u.phone_verified_at, "
    "u.default_organization_id, u.is_active, u.created_at, u.date_of_birth, u.national_id_last4, "
    "u.national_id_type, u.national_id_sealed IS NOT NULL AS has_national_id, u.address, u.city, u.state, "
    "u.zip_code AS postal_code, u.country, u.emergency_contact_name, u.emergency_contact_phone, "
    "u.emergency_contact_relation, u.id_document_url, u.address_proof_url, u.kyc_status, u.kyc_verified_at, "
    "u.kyc_rejection_reason, u.kyc_submitted_at, u.username, u.avatar_url, u.country_code, u.version, "
    "COALESCE((SELECT m.enabled FROM identity.user_mfa m WHERE m.user_id = u.id), false) AS mfa_enabled"
)


@dataclass(frozen=True, slots=True)
class Account:
    """A user's own account with its KYC details (never the password hash or the sealed national id)."""

    id: uuid.UUID
    email: str
    email_verified_at: datetime | None
    first_name: str
    last_name: str
    phone: str | None
    phone_verified_at: datetime | None
    default_organization_id: uuid.UUID | None
    is_active: bool
    created_at: datetime
    date_of_birth: date | None
    national_id_last4: str | None
    national_id_type: str | None
    has_national_id: bool
    address: str | None
    city: str | None
    state: str | None
    postal_code: str | None
    country: str | None
    emergency_contact_name: str | None
    emergency_contact_phone: str | None
    emergency_contact_relation: str | None
    id_document_url: str | None
    address_proof_url: str | None
    kyc_status: str | None
    kyc_verified_at: datetime | None
    kyc_rejection_reason: str | None
    kyc_submitted_at: datetime | None
    mfa_enabled: bool
    username: str | None = None
    avatar_url: str = ""
    country_code: str = ""
    version: int = 1

    @property
    def national_id_masked(self) -> str:
        """The national id as it may be shown: only its last four characters."""
        return kyc_rules.mask(self.national_id_last4)


_account = by_name(Account)


async def get_account(conn: Connection, user_id: uuid.UUID, *, for_update: bool = False) -> Account | None:
    """A user's account (never the password hash or the sealed national id)."""
    lock = " FOR UPDATE OF u" if for_update else ""
    return await first(
        conn, f"SELECT {_ACCOUNT_COLUMNS} FROM identity.users u WHERE u.id = :id AND u.deleted_at IS NULL{lock}",
        {"id": user_id}, _account)


async def update_profile(conn: Connection, user_id: uuid.UUID, values: dict[str, Any]) -> None:
    """The user's own profile fields (first_name, last_name, username, avatar_url, country_code);
    the version moves on. A username another user holds, whatever its case: ALREADY_EXISTS."""
    sets = ", ".join(f"{c} = :{c}" for c in values)
    try:
        async with conn.begin_nested():
            await conn.execute(text(f"UPDATE identity.users SET {sets}, version = version + 1, updated_at = now() "
                                    "WHERE id = :id AND deleted_at IS NULL"), {**values, "id": user_id})
    except IntegrityError:
        raise AlreadyExists("this username is taken", reason="USERNAME_TAKEN") from None


async def credentials(conn: Connection, user_id: uuid.UUID, *, for_update: bool = False) -> dict[str, Any] | None:
    """What a password check needs: email, names, hash, default organization."""
    lock = " FOR UPDATE" if for_update else ""
    return await first(
        conn, "SELECT id, email, first_name, last_name, password_hash, default_organization_id, is_active "
        f"FROM identity.users WHERE id = :id AND deleted_at IS NULL{lock}",
        {"id": user_id})


async def active_user_by_email(conn: Connection, email: str) -> dict[str, Any] | None:
    return await first(
        conn, "SELECT id, email, default_organization_id FROM identity.users "
        "WHERE lower(email) = lower(:e) AND deleted_at IS NULL AND is_active",
        {"e": email})


async def set_email_verified(conn: Connection, user_id: uuid.UUID, email: str) -> bool:
    """Marks the email verified if it is still the one the link was sent to."""
    result = await conn.execute(
        text("UPDATE identity.users SET email_verified_at = now(), updated_at = now() "
             "WHERE id = :id AND lower(email) = lower(:e) AND deleted_at IS NULL"),
        {"id": user_id, "e": email},
    )
    return result.rowcount == 1


async def set_password(conn: Connection, user_id: uuid.UUID, password_hash: str,
                       expected_old_hash: str | None = None) -> bool:
    """Sets the password; with expected_old_hash, only if nobody changed it meanwhile."""
    sql = ("UPDATE identity.users SET password_hash = :h, password_changed_at = now(), updated_at = now() "
           "WHERE id = :id AND deleted_at IS NULL")
    params: dict[str, Any] = {"h": password_hash, "id": user_id}
    if expected_old_hash is not None:
        sql += " AND password_hash = :old"
        params["old"] = expected_old_hash
    return (await conn.execute(text(sql), params)).rowcount == 1


async def set_verified_phone(conn: Connection, user_id: uuid.UUID, phone: str) -> None:
    await conn.execute(
        text("UPDATE identity.users SET phone = :p, phone_verified_at = now(), updated_at = now() WHERE id = :id"),
        {"p": phone, "id": user_id},
    )


async def submit_kyc(conn: Connection, user_id: uuid.UUID, *, date_of_birth: date,
                     national_id_sealed: str | None, national_id_last4: str | None, national_id_type: str,
                     address: str, city: str, state: str, postal_code: str, country: str,
                     emergency_contact_name: str, emergency_contact_phone: str, emergency_contact_relation: str,
                     id_document_url: str, address_proof_url: str) -> None:
    """Stores a submission (the sealed national id replaces the one on file unless None) and makes
    the status pending."""
    await conn.execute(
        text("UPDATE identity.users SET date_of_birth = :dob, "
             "national_id_sealed = COALESCE(:nid, national_id_sealed), "
             "national_id_last4 = COALESCE(:last4, national_id_last4), national_id_type = :nid_type, "
             "address = :address, city = :city, state = NULLIF(:state, ''), zip_code = NULLIF(:postal, ''), "
             "country = :country, emergency_contact_name = NULLIF(:ec_name, ''), "
             "emergency_contact_phone = NULLIF(:ec_phone, ''), "
             "emergency_contact_relation = NULLIF(:ec_rel, ''), id_document_url = NULLIF(:id_doc, ''), "
             "address_proof_url = NULLIF(:addr_proof, ''), kyc_status = 'pending', kyc_verified_at = NULL, "
             "kyc_rejection_reason = NULL, kyc_submitted_at = now(), updated_at = now() WHERE id = :id"),
        {"id": user_id, "dob": date_of_birth, "nid": national_id_sealed, "last4": national_id_last4,
         "nid_type": national_id_type, "address": address, "city": city, "state": state, "postal": postal_code,
         "country": country, "ec_name": emergency_contact_name, "ec_phone": emergency_contact_phone,
         "ec_rel": emergency_contact_relation, "id_doc": id_document_url, "addr_proof": address_proof_url},
    )


async def review_kyc(conn: Connection, user_id: uuid.UUID, status: str, reason: str) -> None:
    await conn.execute(
        text("UPDATE identity.users SET kyc_status = :s, "
             "kyc_verified_at = CASE WHEN :s = 'verified' THEN now() END, "
             "kyc_rejection_reason = NULLIF(:r, ''), updated_at = now() WHERE id = :id"),
        {"s": status, "r": reason, "id": user_id},
    )


async def revoke_sessions(conn: Connection, user_id: uuid.UUID, *,
                          keep_family: uuid.UUID | None = None) -> tuple[int, set[tuple[uuid.UUID, uuid.UUID]]]:
    """Ends the user's sessions (refresh families) in every organization, but keep_family: the
    number of refresh tokens revoked and the sessions ended, as (organization, family).
    Needs app.user_id = user_id (the own_rows policy) to reach the other organizations."""
    sql = ("UPDATE identity.refresh_tokens SET revoked_at = now(), updated_at = now() "
           "WHERE user_id = :u AND revoked_at IS NULL")
    params: dict[str, Any] = {"u": user_id}
    if keep_family is not None:
        sql += " AND family_id <> :f"
        params["f"] = keep_family
    rows = (await conn.execute(text(sql + " RETURNING organization_id, family_id"), params)).all()
    return len(rows), {(r["organization_id"], r["family_id"]) for r in rows}


# -- single-use tokens ---------------------------------------------------------------------


async def retire_tokens(conn: Connection, user_id: uuid.UUID, purpose: str) -> None:
    """Spends the user's live tokens of a purpose (a new one supersedes them)."""
    await conn.execute(
        text("UPDATE identity.user_tokens SET used_at = now(), updated_at = now() "
             "WHERE user_id = :u AND purpose = :p AND used_at IS NULL"),
        {"u": user_id, "p": purpose},
    )


async def insert_token(conn: Connection, *, token_id: uuid.UUID, user_id: uuid.UUID, purpose: str,
                       token_hash: bytes, target: str, expires_at: datetime) -> None:
    await conn.execute(
        text("INSERT INTO identity.user_tokens (id, user_id, purpose, token_hash, target, expires_at) "
             "VALUES (:id, :u, :p, :h, :t, :e)"),
        {"id": token_id, "u": user_id, "p": purpose, "h": token_hash, "t": target, "e": expires_at},
    )


async def token_for_update(conn: Connection, purpose: str, token_hash: bytes) -> dict[str, Any] | None:
    """A live (unused, unexpired) token by its hash, locked."""
    return await first(
        conn, "SELECT id, user_id, target, attempts FROM identity.user_tokens "
        "WHERE purpose = :p AND token_hash = :h AND used_at IS NULL AND expires_at > now() FOR UPDATE",
        {"p": purpose, "h": token_hash})


async def live_token_of_user_for_update(conn: Connection, user_id: uuid.UUID,
                                        purpose: str) -> dict[str, Any] | None:
    """The user's newest live token of a purpose, locked."""
    return await first(
        conn, "SELECT id, user_id, target, token_hash, attempts FROM identity.user_tokens "
        "WHERE user_id = :u AND purpose = :p AND used_at IS NULL AND expires_at > now() "
        "ORDER BY created_at DESC LIMIT 1 FOR UPDATE",
        {"u": user_id, "p": purpose})


async def spend_token(conn: Connection, token_id: uuid.UUID) -> None:
    await conn.execute(
        text("UPDATE identity.user_tokens SET used_at = now(), updated_at = now() WHERE id = :id"),
        {"id": token_id},
    )


async def count_failed_attempt(conn: Connection, token_id: uuid.UUID, max_attempts: int) -> int:
    """One more wrong guess; the token is spent once it has had max_attempts. Returns the attempts."""
    return (await conn.execute(
        text("UPDATE identity.user_tokens SET attempts = attempts + 1, updated_at = now(), "
             "used_at = CASE WHEN attempts + 1 >= :max THEN now() ELSE used_at END "
             "WHERE id = :id RETURNING attempts"),
        {"id": token_id, "max": max_attempts},
    )).scalar()
