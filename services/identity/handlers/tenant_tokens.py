"""IssueTenantToken: a platform service principal's token acting for one organization.

The principal (crm, ai, ...) authenticates with its client id and secret; identity answers with
a short-lived access token (IDENTITY_TENANT_TOKEN_TTL_SECONDS, 5 minutes) for the organization it
names, carrying the permissions asked for (each within the principal's grant) or the whole grant,
audience-bound to the services of those permissions and naming the service as its actor
(domain/principals.py). Every service verifies it as any access token (same keys); row-level
security applies to it as to any token of that tenant.

Refused: an unknown client or a wrong secret (UNAUTHENTICATED, alike), a revoked principal
(UNAUTHENTICATED, PRINCIPAL_REVOKED), an unknown or removed organization (NOT_FOUND), a suspended one
(FAILED_PRECONDITION, ORGANIZATION_SUSPENDED), a
permission outside the grant (PERMISSION_DENIED, PERMISSION_NOT_GRANTED). Each token issued is
recorded in the organization's audit trail (`identity.tenant_token.issue`, the service as actor).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from chassis.auth import ISSUER
from chassis.errors import NotFound, PermissionDenied, Unauthenticated, Violations
from chassis.resource import parse_id
from services.identity.domain import lifecycle
from services.identity.domain import principals as rules
from services.identity.handlers import grants
from services.identity.handlers.deps import Deps
from services.identity.store import organizations as organization_store
from services.identity.store import principals as store

BAD_CLIENT = "invalid client credentials"
ISSUE = "identity.tenant_token.issue"
_NO_HASH = b"\0" * 32


@dataclass(frozen=True)
class TenantToken:
    access_token: str
    expires_at: datetime
    permissions: list[str]
    audience: list[str]


async def issue(deps: Deps, client_id: str, client_secret: str, organization_id: str,
                permissions: list[str]) -> TenantToken:
    v = Violations()
    name = client_id.strip()
    if not name:
        v.add("client_id", "is required")
    elif not rules.NAME.match(name):
        v.add("client_id", "is not a service principal's name")
    if not client_secret:
        v.add("client_secret", "is required")
    elif len(client_secret) > rules.SECRET_MAX:
        v.add("client_secret", f"must be at most {rules.SECRET_MAX} characters")
    org = parse_id(organization_id, "organization_id", v)
    asked = rules.narrowed([], list(permissions), "permissions", v)
    v.raise_if_any()
    assert org is not None
    async with deps.db.unit_of_work(org) as uow:
        principal = await store.find(uow.conn, name)
        # An unknown client and a wrong secret answer alike, after the same comparison.
        if not rules.secret_matches(client_secret, principal.secret_hash if principal else _NO_HASH) \
                or principal is None:
            raise Unauthenticated(BAD_CLIENT)
        if principal.revoked_at is not None:
            raise Unauthenticated(f"the service principal {name} was revoked", reason="PRINCIPAL_REVOKED")
        if not await store.organization_live(uow.conn, org):
            raise NotFound(f"organization {org} not found", reason="ORGANIZATION_NOT_FOUND")
        lifecycle.refuse_if_suspended(await organization_store.state(uow.conn, org))
        perms = asked or list(principal.permissions)
        excess = rules.beyond(list(principal.permissions), perms)
        if excess:
            raise PermissionDenied(f"the service principal {name} is not granted {', '.join(excess)}",
                                   reason="PERMISSION_NOT_GRANTED", metadata={"permissions": ",".join(excess)})
        claims = rules.tenant_claims(issuer=ISSUER, principal_id=principal.id, name=name, org_id=org,
                                     permissions=perms, now=grants.issue_time(),
                                     ttl=deps.settings.tenant_token_ttl_seconds)
        expires_at = datetime.fromtimestamp(claims["exp"], UTC)
        uow.audit(ISSUE, "service_principal", str(principal.id), actor_id=claims["act"]["sub"],
                  actor_kind=rules.KIND, after={"service": name, "permissions": perms, "audience": claims["aud"],
                                                "token_id": claims["jti"], "expire_time": expires_at.isoformat()})
    return TenantToken(deps.keys.sign(claims), expires_at, perms, claims["aud"])

