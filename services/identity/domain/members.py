"""Membership rules: roles a member may hold, owners, invitations.

An invitation token is `<organization id hex>.<secret>`: it names its tenant (the accept
call is public, and the lookup runs under row-level security), and only the SHA-256 of the
secret is stored.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from chassis.errors import FailedPrecondition, PermissionDenied, Violations
from services.identity.domain import roles
from services.identity.domain.tokens import hash_secret

ACTIVE = "active"
SUSPENDED = "suspended"
PENDING = "pending"

INVITATION_TTL = timedelta(days=7)

# Invitation states, as the API names them.
INVITATION_PENDING = "pending"
INVITATION_ACCEPTED = "accepted"
INVITATION_REVOKED = "revoked"
INVITATION_EXPIRED = "expired"

# MembershipChangedEvent.change
ROLE_CHANGED = "role_changed"
SUSPENDED_CHANGE = "suspended"
REACTIVATED = "reactivated"
REMOVED = "removed"


@dataclass(frozen=True)
class RoleRef:
    """What a member (or an invitation) holds: a system role, or a custom role by id."""

    role: str  # a system role name, or roles.CUSTOM
    custom_role_id: uuid.UUID | None = None

    @property
    def api_name(self) -> str:
        return str(self.custom_role_id) if self.role == roles.CUSTOM else self.role


def parse_role(value: str, field: str, v: Violations) -> RoleRef | None:
    """A system role name or a custom role's id (whether it exists is the handler's to check)."""
    value = value.strip()
    if not value:
        v.add(field, "is required")
        return None
    if roles.is_system_role(value.lower()):
        return RoleRef(value.lower())
    try:
        return RoleRef(roles.CUSTOM, uuid.UUID(value))
    except ValueError:
        v.add(field, f"must be one of {', '.join(roles.SYSTEM_ROLES)} or a custom role id")
        return None


@dataclass(frozen=True)
class Overrides:
    grant: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()

    def as_json(self) -> dict:
        return {"grant": list(self.grant), "deny": list(self.deny)}

    @classmethod
    def from_json(cls, value: dict | None) -> Overrides:
        value = value or {}
        return cls(tuple(value.get("grant") or ()), tuple(value.get("deny") or ()))


def clean_overrides(grant: list[str], deny: list[str], field: str, v: Violations) -> Overrides:
    return Overrides(tuple(roles.clean_permissions(grant, f"{field}.grant", v)),
                     tuple(roles.clean_permissions(deny, f"{field}.deny", v)))


@dataclass(frozen=True)
class Membership:
    user_id: uuid.UUID
    role: RoleRef
    status: str
    overrides: Overrides = field(default_factory=Overrides)


def check_owner_change(*, actor_is_owner: bool, target: Membership, new_role: RoleRef | None,
                       active_owners: int, removing: bool = False, suspending: bool = False) -> None:
    """Only an owner grants, removes, suspends or demotes an owner; the last active owner stays."""
    target_owner = target.role.role == roles.OWNER
    becomes_owner = new_role is not None and new_role.role == roles.OWNER
    if (target_owner or becomes_owner) and not actor_is_owner:
        raise PermissionDenied("only an owner may grant or remove the owner role", reason="OWNER_REQUIRED")
    if not target_owner or target.status != ACTIVE:
        return
    leaves_ownership = removing or suspending or (new_role is not None and new_role.role != roles.OWNER)
    if leaves_ownership and active_owners <= 1:
        raise FailedPrecondition("the organization's last owner cannot be removed, suspended or demoted; "
                                 "make another member an owner first", reason="LAST_OWNER")


def check_grantable(actor_permissions: tuple[str, ...], wanted: list[str], field: str) -> None:
    """No one hands out a permission they do not hold themselves."""
    for p in wanted:
        if not roles.holds(actor_permissions, p):
            raise PermissionDenied(f"{field}: you cannot grant {p!r}, which you do not hold",
                                   reason="PERMISSION_ESCALATION", metadata={"permission": p})


def new_invitation_token(org_id: uuid.UUID) -> tuple[str, bytes]:
    secret = secrets.token_urlsafe(32)
    return f"{org_id.hex}.{secret}", hash_secret(secret)


def parse_invitation_token(token: str) -> tuple[uuid.UUID, bytes] | None:
    org_hex, sep, secret = token.strip().partition(".")
    if not sep or not secret or len(secret) > 200:
        return None
    try:
        return uuid.UUID(hex=org_hex), hash_secret(secret)
    except ValueError:
        return None


def invitation_state(*, accepted_at: datetime | None, revoked_at: datetime | None, expires_at: datetime,
                     now: datetime) -> str:
    if accepted_at is not None:
        return INVITATION_ACCEPTED
    if revoked_at is not None:
        return INVITATION_REVOKED
    if expires_at <= now:
        return INVITATION_EXPIRED
    return INVITATION_PENDING


def check_acceptable(state: str) -> None:
    if state == INVITATION_ACCEPTED:
        raise FailedPrecondition("this invitation was already accepted", reason="INVITATION_ACCEPTED")
    if state == INVITATION_REVOKED:
        raise FailedPrecondition("this invitation was revoked", reason="INVITATION_REVOKED")
    if state == INVITATION_EXPIRED:
        raise FailedPrecondition("this invitation has expired; ask for a new one", reason="INVITATION_EXPIRED")
