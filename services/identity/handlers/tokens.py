"""Token issuing: a member's access and refresh tokens (sign-up, login, MFA, refresh,
invitation, switching organization all end here) and a service account's access token
(OAuth 2.0 client credentials)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from chassis.auth import AUDIENCE, ISSUER
from chassis.db import UnitOfWork
from chassis.errors import Unauthenticated, Violations
from services.identity.domain import lifecycle
from services.identity.domain import mfa as mfa_rules
from services.identity.domain import service_accounts as service_account_rules
from services.identity.domain import tokens as rules
from services.identity.handlers import grants, platform, service_accounts
from services.identity.handlers.deps import Deps
from services.identity.store import accounts as store
from services.identity.store import mfa as mfa_store
from services.identity.store import organizations as organization_store
from services.identity.store import service_accounts as service_account_store

BAD_CLIENT = "invalid client credentials"


@dataclass(frozen=True)
class Tokens:
    access_token: str
    access_expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime
    user_id: uuid.UUID
    organization_id: uuid.UUID
    role: str


async def issue_tokens(deps: Deps, uow: UnitOfWork, user_id: uuid.UUID, org_id: uuid.UUID,
                       family_id: uuid.UUID, *, auth_time: float | None = None) -> Tokens:
    """A member's tokens, in the caller's unit of work (tenant org_id); the refresh token joins
    the session `family_id` (a new one for a sign-in). `auth_time`: when the user proved who
    they are (now, for a password or MFA sign-in; the session's, for a refresh), kept on the
    refresh token so the session's tokens carry it (handlers/reauth.py); None: unknown."""
    # The membership as it is now, under a share lock (see handlers/grants.py): role, custom
    # role permissions, overrides; whatever role the caller read earlier does not count.
    granted = await grants.member_grants(uow.conn, org_id, user_id)
    if granted is None:
        raise Unauthenticated("not an active member of this organization", reason="MEMBERSHIP_INACTIVE")
    lifecycle.refuse_if_suspended(await organization_store.state(uow.conn, org_id))
    role, permissions = granted
    access_ttl = deps.settings.access_token_ttl_seconds
    claims = rules.access_claims(issuer=ISSUER, audience=AUDIENCE, user_id=user_id, org_id=org_id, role=role,
                                 permissions=permissions, family_id=family_id, now=grants.issue_time(),
                                 ttl=access_ttl, auth_time=auth_time)
    # A platform operator's token also carries their platform permissions (handlers/platform.py).
    claims["perms"] += await platform.token_permissions(uow, user_id)
    # The organization requires MFA and this user has not enrolled yet: the token may only
    # enroll (identity.self, for MfaService); a new login after enrollment gets the role's permissions.
    enroll_only = await enroll_only_permissions(uow, user_id, org_id)
    if enroll_only is not None:
        claims["perms"] = enroll_only
    refresh, refresh_hash = rules.new_refresh_token(org_id)
    refresh_expires = datetime.now(UTC) + timedelta(seconds=deps.settings.refresh_token_ttl_seconds)
    await store.insert_refresh_token(uow.conn, org_id, user_id, family_id, refresh_hash, refresh_expires,
                                     auth_time=claims.get("auth_time"))
    return Tokens(
        access_token=deps.keys.sign(claims),
        access_expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        refresh_token=refresh,
        refresh_expires_at=refresh_expires,
        user_id=user_id,
        organization_id=org_id,
        role=role,
    )


async def enroll_only_permissions(uow: UnitOfWork, user_id: uuid.UUID, org_id: uuid.UUID) -> list[str] | None:
    """Where the organization requires MFA and the user has not enabled it yet (tenant org_id),
    the only permissions a token of theirs may carry: identity.self, enough to enroll through
    MfaService and nothing else. None when MFA does not limit the token."""
    if await mfa_store.enrollment_pending(uow.conn, user_id, org_id):
        return list(mfa_rules.ENROLL_ONLY_PERMISSIONS)
    return None


async def issue_service_token(deps: Deps, client_id: str, client_secret: str) -> tuple[str, datetime]:
    """IssueServiceToken: a service account's access token for its id and secret."""
    v = Violations()
    if not client_id:
        v.add("client_id", "is required")
    if not client_secret:
        v.add("client_secret", "is required")
    v.raise_if_any()
    org = service_account_rules.tenant_of_client_id(client_id)
    if org is None:
        raise Unauthenticated(BAD_CLIENT)
    async with deps.db.unit_of_work(org) as uow:
        row = await service_account_store.by_client_id(uow.conn, org, client_id)
        creator = await service_accounts.creator_rights(uow, org, row["created_by"]) if row else None
        state = await organization_store.state(uow.conn, org) if row else None
    # An unknown client and a wrong secret answer alike.
    if row is None or not service_account_rules.secret_matches(client_secret, row["secret_hash"]):
        raise Unauthenticated(BAD_CLIENT)
    # No more than its creator holds now (handlers/service_accounts.py).
    if creator is None:
        raise Unauthenticated("the service account's creator is no longer an active member of the organization",
                              reason="SERVICE_ACCOUNT_CREATOR_INACTIVE")
    lifecycle.refuse_if_suspended(state)
    permissions = service_account_rules.capped(list(row["permissions"]), creator)
    claims = service_account_rules.service_claims(
        issuer=ISSUER, audience=AUDIENCE, account_id=row["id"], org_id=org, permissions=permissions,
        now=time.time(), ttl=deps.settings.access_token_ttl_seconds)
    return deps.keys.sign(claims), datetime.fromtimestamp(claims["exp"], UTC)
