"""Membership use cases: members, invitations and custom roles of the caller's organization.

Every change of a member's rights (role, overrides, suspension, removal, a change of their
custom role) records a not_before for the member in membership_revocations and publishes
`identity.membership.changed` in the same transaction: every service (this one at once, the
others through the broadcast) then refuses the member's access tokens issued before it. The
member refreshes (while still an active member) to get a token with the new rights.

Changes that touch who holds what lock the organization row first (FOR NO KEY UPDATE), so
the last-owner rule and role deletion never race another change of the same organization.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from givance.events.v1 import identity_events_pb2

from chassis import paging
from chassis.context import Principal
from chassis.db import UnitOfWork
from chassis.errors import (
    Aborted,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Violations,
)
from services.identity.domain import accounts as account_rules
from services.identity.domain import members as rules
from services.identity.domain import passwords, roles
from services.identity.handlers import grants
from services.identity.handlers.accounts import Accounts, Tokens, publish_member_joined
from services.identity.handlers.deps import Deps
from services.identity.store import members as store
from services.identity.store import staff as staff_store

MEMBERSHIP_CHANGED = "identity.membership.changed"
INVITATION_CREATED = "identity.invitation.created"
NAME_MAX = 100


def parse_id(value: str, field: str, v: Violations | None = None) -> uuid.UUID | None:
    if not value:
        if v is None:
            raise InvalidArgument.field(field, "is required")
        v.add(field, "is required")
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        if v is None:
            raise InvalidArgument.field(field, "is not a valid id") from None
        v.add(field, "is not a valid id")
        return None


def _check_request_id(request_id: str, v: Violations) -> None:
    if len(request_id) > 100:
        v.add("request_id", "must be at most 100 characters")


def _membership(row: dict) -> rules.Membership:
    return rules.Membership(
        user_id=row["user_id"], role=rules.RoleRef(row["role"], row["custom_role_id"]), status=row["status"],
        overrides=rules.Overrides.from_json(row["permissions_override"]))


def _member_audit(row: dict) -> dict:
    m = _membership(row)
    return {"role": m.role.api_name, "status": m.status, "overrides": m.overrides.as_json()}


@dataclass(frozen=True)
class AcceptResult:
    tokens: Tokens | None  # None when the account has MFA: the member signs in with it


class Members:
    def __init__(self, deps: Deps, accounts: Accounts):
        self.deps = deps
        self.db = deps.db
        self.accounts = accounts

    # -- shared -----------------------------------------------------------------------------

    async def _actor_is_owner(self, uow: UnitOfWork, org: uuid.UUID, principal: Principal) -> bool:
        if principal.kind != "user":
            return False
        try:
            actor = uuid.UUID(principal.subject)
        except ValueError:
            return False
        row = await store.get_member(uow.conn, org, actor)
        return row is not None and row["role"] == roles.OWNER and row["status"] == rules.ACTIVE

    async def _role_permissions(self, uow: UnitOfWork, org: uuid.UUID, ref: rules.RoleRef) -> tuple[str, ...]:
        if ref.role != roles.CUSTOM:
            return roles.permissions_for(ref.role)
        assert ref.custom_role_id is not None
        row = await store.get_role(uow.conn, org, ref.custom_role_id)
        if row is None:
            raise NotFound(f"role {ref.custom_role_id} not found")
        return tuple(row["permissions"])

    def _changed(self, uow: UnitOfWork, org: uuid.UUID, user_id: uuid.UUID, change: str,
                 pending: list[tuple[uuid.UUID, uuid.UUID, float]]) -> float:
        """Queue the membership.changed broadcast; the row lock is held, so now is after any
        token issued from the old membership (handlers/grants.py)."""
        not_before = grants.issue_time()
        event = identity_events_pb2.MembershipChangedEvent(organization_id=str(org), user_id=str(user_id),
                                                           change=change)
        event.not_before.FromNanoseconds(int(not_before * 1_000_000) * 1000)
        uow.publish(MEMBERSHIP_CHANGED, event, aggregate_type="membership", aggregate_id=f"{org}/{user_id}")
        pending.append((org, user_id, not_before))
        return not_before

    async def _record_revocations(self, uow: UnitOfWork, pending: list[tuple[uuid.UUID, uuid.UUID, float]]) -> None:
        for org, user_id, not_before in pending:
            await store.upsert_revocation(uow.conn, org, user_id, not_before)

    def _apply_locally(self, pending: list[tuple[uuid.UUID, uuid.UUID, float]]) -> None:
        """After the commit: this process refuses the tokens at once, before the broadcast arrives."""
        for org, user_id, not_before in pending:
            self.deps.revocations.revoke(str(user_id), org, not_before)

    async def _target(self, uow: UnitOfWork, org: uuid.UUID, user_id: uuid.UUID) -> dict:
        await store.lock_organization(uow.conn, org)
        row = await store.get_member(uow.conn, org, user_id, for_update=True)
        if row is None:
            raise NotFound(f"member {user_id} not found")
        return row

    # -- members ----------------------------------------------------------------------------

    async def list_members(self, org: uuid.UUID, page_size: int, page_token: str) -> tuple[list[dict], str]:
        size = paging.page_size(page_size)
        fp = paging.fingerprint("members")
        after = paging.decode_keyset(page_token, fp, datetime.fromisoformat, uuid.UUID)
        async with self.db.unit_of_work(org) as uow:
            rows = await store.page_members(uow.conn, org, tuple(after) if after else None, size + 1)
        return paging.trim(rows, size, lambda r: (r["created_at"], r["user_id"]), fp)

    async def update_member(self, principal: Principal, org: uuid.UUID, *, user_id: str, role: str,
                            overrides: tuple[list[str], list[str]] | None, etag: str) -> dict:
        v = Violations()
        uid = parse_id(user_id, "member.user_id", v)
        new_ref = rules.parse_role(role, "member.role", v) if role.strip() else None
        new_overrides = rules.clean_overrides(overrides[0], overrides[1], "member.overrides", v) \
            if overrides is not None else None
        v.raise_if_any()
        pending: list = []
        async with self.db.unit_of_work(org) as uow:
            row = await self._target(uow, org, uid)
            if etag and etag != rules.etag(row["version"]):
                raise Aborted("the member changed since it was read (member.etag is stale); read it again",
                              reason="ETAG_MISMATCH")
            current = _membership(row)
            ref = new_ref or current.role
            ovr = new_overrides if new_overrides is not None else current.overrides
            if ref == current.role and ovr == current.overrides:
                return row
            rules.check_owner_change(actor_is_owner=await self._actor_is_owner(uow, org, principal), target=current,
                                     new_role=ref if ref != current.role else None,
                                     active_owners=await store.count_active_owners(uow.conn, org))
            if ref != current.role:
                rules.check_grantable(principal.permissions, list(await self._role_permissions(uow, org, ref)),
                                      "member.role")
            rules.check_grantable(principal.permissions, [g for g in ovr.grant if g not in current.overrides.grant],
                                  "member.overrides.grant")
            await store.update_member_role(uow.conn, org, uid, ref.role, ref.custom_role_id, ovr.as_json())
            self._changed(uow, org, uid, rules.ROLE_CHANGED, pending)
            await self._record_revocations(uow, pending)
            updated = await store.get_member(uow.conn, org, uid)
            uow.audit("identity.member.update", "member", str(uid), before=_member_audit(row),
                      after=_member_audit(updated))
        self._apply_locally(pending)
        return updated

    async def suspend_member(self, principal: Principal, org: uuid.UUID, user_id: str) -> dict:
        uid = parse_id(user_id, "user_id")
        pending: list = []
        async with self.db.unit_of_work(org) as uow:
            row = await self._target(uow, org, uid)
            if row["status"] == rules.SUSPENDED:
                return row
            rules.check_owner_change(actor_is_owner=await self._actor_is_owner(uow, org, principal),
                                     target=_membership(row), new_role=None, suspending=True,
                                     active_owners=await store.count_active_owners(uow.conn, org))
            await store.set_member_status(uow.conn, org, uid, rules.SUSPENDED)
            await staff_store.set_active(uow.conn, org, uid, False)
            ended = await store.revoke_member_sessions(uow.conn, org, uid)
            self._changed(uow, org, uid, rules.SUSPENDED_CHANGE, pending)
            await self._record_revocations(uow, pending)
            updated = await store.get_member(uow.conn, org, uid)
            uow.audit("identity.member.suspend", "member", str(uid), before={"status": row["status"]},
                      after={"status": rules.SUSPENDED, "sessions_ended": ended})
        self._apply_locally(pending)
        return updated

    async def reactivate_member(self, principal: Principal, org: uuid.UUID, user_id: str) -> dict:
        uid = parse_id(user_id, "user_id")
        pending: list = []
        async with self.db.unit_of_work(org) as uow:
            row = await self._target(uow, org, uid)
            if row["status"] == rules.ACTIVE:
                return row
            rules.check_owner_change(actor_is_owner=await self._actor_is_owner(uow, org, principal),
                                     target=_membership(row), new_role=None,
                                     active_owners=await store.count_active_owners(uow.conn, org))
            await store.set_member_status(uow.conn, org, uid, rules.ACTIVE)
            await staff_store.set_active(uow.conn, org, uid, True)
            self._changed(uow, org, uid, rules.REACTIVATED, pending)
            await self._record_revocations(uow, pending)
            updated = await store.get_member(uow.conn, org, uid)
            uow.audit("identity.member.reactivate", "member", str(uid), before={"status": row["status"]},
                      after={"status": rules.ACTIVE})
        self._apply_locally(pending)
        return updated

    async def remove_member(self, principal: Principal, org: uuid.UUID, user_id: str) -> None:
        uid = parse_id(user_id, "user_id")
        pending: list = []
        async with self.db.unit_of_work(org) as uow:
            row = await self._target(uow, org, uid)
            rules.check_owner_change(actor_is_owner=await self._actor_is_owner(uow, org, principal),
                                     target=_membership(row), new_role=None, removing=True,
                                     active_owners=await store.count_active_owners(uow.conn, org))
            await store.delete_member(uow.conn, org, uid)
            await staff_store.delete(uow.conn, org, uid)
            ended = await store.revoke_member_sessions(uow.conn, org, uid)
            await store.clear_default_organization(uow.conn, uid, org)
            self._changed(uow, org, uid, rules.REMOVED, pending)
            await self._record_revocations(uow, pending)
            uow.audit("identity.member.remove", "member", str(uid),
                      before={**_member_audit(row), "email": row["email"]}, after={"sessions_ended": ended})
        self._apply_locally(pending)
        # Their next login without an organization picks another of their memberships.
        async with self.db.unit_of_work(None, user_id=uid) as uow:
            await store.adopt_default_organization(uow.conn, uid)

    # -- invitations ------------------------------------------------------------------------

    async def create_invitation(self, principal: Principal, org: uuid.UUID, *, email: str, role: str,
                                request_id: str) -> dict:
        v = Violations()
        if email.strip():
            email = account_rules.normalize_email(email.strip(), "email", v)
        else:
            v.add("email", "is required")
        ref = rules.parse_role(role, "role", v)
        _check_request_id(request_id, v)
        v.raise_if_any()
        assert ref is not None
        async with self.db.unit_of_work(org) as uow:
            if request_id:
                first = await store.invitation_by_request(uow.conn, org, request_id)
                if first is not None:
                    return first
            await store.lock_organization(uow.conn, org)
            if ref.role == roles.OWNER and not await self._actor_is_owner(uow, org, principal):
                raise PermissionDenied("only an owner may invite an owner", reason="OWNER_REQUIRED")
            rules.check_grantable(principal.permissions, list(await self._role_permissions(uow, org, ref)), "role")
            if await store.member_by_email(uow.conn, org, email) is not None:
                raise FailedPrecondition(f"{email} is already a member", reason="ALREADY_MEMBER")
            await store.revoke_pending_invitations(uow.conn, org, email)
            token, token_hash = rules.new_invitation_token(org)
            expires = datetime.now(UTC) + rules.INVITATION_TTL
            row = await store.insert_invitation(
                uow.conn, org_id=org, invitation_id=uuid.uuid4(), email=email, role=ref.role,
                custom_role_id=ref.custom_role_id, token_hash=token_hash, invited_by=_actor_id(principal),
                expires_at=expires, request_id=request_id or None)
            if row is None:  # the same request_id, committed meanwhile
                raise Aborted("a request with this request_id is in flight; retry", reason="REQUEST_IN_FLIGHT")
            link = f"{self.deps.settings.public_url.rstrip('/')}/invitations/accept?token={quote(token, safe='')}"
            event = identity_events_pb2.InvitationCreatedEvent(
                invitation_id=str(row["id"]), email=email, role=ref.api_name, accept_link=link)
            event.expire_time.FromDatetime(expires)
            uow.publish(INVITATION_CREATED, event, aggregate_type="invitation", aggregate_id=str(row["id"]))
            uow.audit("identity.invitation.create", "invitation", str(row["id"]),
                      after={"email": email, "role": ref.api_name, "expires_at": expires.isoformat()})
        return row

    async def list_invitations(self, org: uuid.UUID, page_size: int, page_token: str) -> tuple[list[dict], str]:
        size = paging.page_size(page_size)
        fp = paging.fingerprint("invitations")
        after = paging.decode_keyset(page_token, fp, datetime.fromisoformat, uuid.UUID)
        async with self.db.unit_of_work(org) as uow:
            rows = await store.page_invitations(uow.conn, org, tuple(after) if after else None, size + 1)
        return paging.trim(rows, size, lambda r: (r["created_at"], r["id"]), fp)

    async def revoke_invitation(self, org: uuid.UUID, invitation_id: str) -> dict:
        iid = parse_id(invitation_id, "id")
        async with self.db.unit_of_work(org) as uow:
            row = await store.get_invitation(uow.conn, org, iid, for_update=True)
            if row is None:
                raise NotFound(f"invitation {invitation_id} not found")
            if row["accepted_at"] is not None:
                raise FailedPrecondition("this invitation was already accepted; remove the member instead",
                                         reason="INVITATION_ACCEPTED")
            if row["revoked_at"] is not None:
                return row
            updated = await store.set_invitation_revoked(uow.conn, org, iid)
            uow.audit("identity.invitation.revoke", "invitation", str(iid),
                      before={"state": invitation_state(row)}, after={"state": rules.INVITATION_REVOKED})
        return updated

    async def accept_invitation(self, *, token: str, password: str, first_name: str, last_name: str) -> AcceptResult:
        v = Violations()
        if not token.strip():
            v.add("token", "is required")
        if len(first_name) > NAME_MAX:
            v.add("first_name", f"must be at most {NAME_MAX} characters")
        if len(last_name) > NAME_MAX:
            v.add("last_name", f"must be at most {NAME_MAX} characters")
        v.raise_if_any()
        parsed = rules.parse_invitation_token(token)
        if parsed is None:
            raise NotFound("invitation not found")
        org, token_hash = parsed
        # First look: which invitation, and whether its email has an account (then no password).
        async with self.db.unit_of_work(org) as uow:
            invitation = await self._acceptable(uow, org, token_hash)
            user = await store.user_by_email(uow.conn, invitation["email"])
        password_hash = None
        if user is None:
            if not password:
                v.add("password", "is required: this email has no account yet")
            else:
                passwords.check_password(password, "password", v, email=invitation["email"],
                                         first_name=first_name, last_name=last_name)
            v.raise_if_any()
            password_hash = await self.accounts.hash_password(password)
        async with self.db.unit_of_work(org) as uow:
            invitation = await self._acceptable(uow, org, token_hash)  # again, locked: accepted once
            await store.lock_organization(uow.conn, org)
            user = await store.user_by_email(uow.conn, invitation["email"])
            if user is None:
                if password_hash is None:  # the account went away between the two looks
                    raise FailedPrecondition("the account changed; try again", reason="ACCOUNT_CHANGED")
                user_id = uuid.uuid4()
                await store.insert_invited_user(uow.conn, user_id, invitation["email"], password_hash,
                                                first_name.strip(), last_name.strip(), org)
                has_mfa = False
            else:
                user_id = user["id"]
                if not user["is_active"]:
                    raise FailedPrecondition("this account is disabled", reason="ACCOUNT_DISABLED")
                if await store.get_member(uow.conn, org, user_id) is not None:
                    raise FailedPrecondition("this account is already a member of the organization",
                                             reason="ALREADY_MEMBER")
                await store.mark_email_verified(uow.conn, user_id)  # the link proves the address
                if user["default_organization_id"] is None:
                    await store.set_default_organization(uow.conn, user_id, org)
                has_mfa = await store.mfa_enabled(uow.conn, user_id)
            if invitation["role"] == roles.CUSTOM and invitation["custom_role_id"] is None:
                raise FailedPrecondition("the invitation's role was deleted; ask for a new invitation",
                                         reason="ROLE_DELETED")
            await store.insert_member(uow.conn, org, user_id, invitation["role"], invitation["custom_role_id"],
                                      invitation["invited_by"])
            await store.set_invitation_accepted(uow.conn, org, invitation["id"], user_id)
            publish_member_joined(uow, org, user_id, invitation_role(invitation))
            uow.audit("identity.invitation.accept", "invitation", str(invitation["id"]), actor_id=str(user_id),
                      actor_kind="user", after={"user_id": str(user_id), "email": invitation["email"],
                                                "role": invitation_role(invitation), "new_account": user is None})
            # An account with a second factor signs in with it; the link alone is not enough.
            tokens = None if has_mfa else await self.accounts._issue(uow, user_id, org, invitation["role"],
                                                                     uuid.uuid4())
        return AcceptResult(tokens=tokens)

    async def _acceptable(self, uow: UnitOfWork, org: uuid.UUID, token_hash: bytes) -> dict:
        invitation = await store.invitation_by_token(uow.conn, org, token_hash)
        if invitation is None:
            raise NotFound("invitation not found")
        rules.check_acceptable(invitation_state(invitation))
        return invitation

    # -- roles ------------------------------------------------------------------------------

    async def list_roles(self, org: uuid.UUID) -> list[dict]:
        async with self.db.unit_of_work(org) as uow:
            custom = await store.list_roles(uow.conn, org)
        system = [{"id": name, "name": name, "description": roles.SYSTEM_ROLE_DESCRIPTIONS.get(name, ""),
                   "permissions": list(perms), "system": True, "version": None}
                  for name, perms in roles.SYSTEM_ROLES.items()]
        return system + [{**r, "system": False} for r in custom]

    async def create_role(self, principal: Principal, org: uuid.UUID, *, name: str, description: str,
                          permissions: list[str], request_id: str) -> dict:
        v = Violations()
        name = roles.check_role_name(name, "role.name", v)
        description = roles.check_role_description(description, "role.description", v)
        perms = roles.clean_permissions(permissions, "role.permissions", v)
        if not permissions:
            v.add("role.permissions", "at least one permission is required")
        _check_request_id(request_id, v)
        v.raise_if_any()
        rules.check_grantable(principal.permissions, perms, "role.permissions")
        async with self.db.unit_of_work(org) as uow:
            row = await store.insert_role(uow.conn, org, uuid.uuid4(), name, description, perms, request_id or None)
            if row is None:
                row = await store.role_by_request(uow.conn, org, request_id)
                if row is None:
                    raise Aborted("a request with this request_id is in flight; retry", reason="REQUEST_IN_FLIGHT")
                return {**row, "system": False}
            uow.audit("identity.role.create", "role", str(row["id"]),
                      after={"name": name, "description": description, "permissions": perms})
        return {**row, "system": False}

    @staticmethod
    def _refuse_system_role(value: str) -> None:
        if value.strip().lower() in roles.SYSTEM_ROLES:
            raise FailedPrecondition(f"{value.strip().lower()} is a system role; system roles are read-only",
                                     reason="SYSTEM_ROLE")

    async def update_role(self, principal: Principal, org: uuid.UUID, *, role_id: str, name: str, description: str,
                          permissions: list[str], etag: str) -> dict:
        self._refuse_system_role(role_id)
        v = Violations()
        rid = parse_id(role_id, "role.id", v)
        name = roles.check_role_name(name, "role.name", v)
        description = roles.check_role_description(description, "role.description", v)
        perms = roles.clean_permissions(permissions, "role.permissions", v)
        if not permissions:
            v.add("role.permissions", "at least one permission is required")
        v.raise_if_any()
        rules.check_grantable(principal.permissions, perms, "role.permissions")
        pending: list = []
        async with self.db.unit_of_work(org) as uow:
            await store.lock_organization(uow.conn, org)
            row = await store.get_role(uow.conn, org, rid, for_update=True)
            if row is None:
                raise NotFound(f"role {role_id} not found")
            if etag and etag != rules.etag(row["version"]):
                raise Aborted("the role changed since it was read (role.etag is stale); read it again",
                              reason="ETAG_MISMATCH")
            updated = await store.update_role(uow.conn, org, rid, name, description, perms)
            if list(row["permissions"]) != perms:
                # Every holder's tokens carry the old permissions: they stop working at once.
                for uid in await store.lock_members_with_role(uow.conn, org, rid):
                    self._changed(uow, org, uid, rules.ROLE_CHANGED, pending)
                await self._record_revocations(uow, pending)
            uow.audit("identity.role.update", "role", str(rid),
                      before={"name": row["name"], "description": row["description"],
                              "permissions": list(row["permissions"])},
                      after={"name": name, "description": description, "permissions": perms,
                             "members_affected": len(pending)})
        self._apply_locally(pending)
        return {**updated, "system": False}

    async def delete_role(self, org: uuid.UUID, role_id: str) -> None:
        self._refuse_system_role(role_id)
        rid = parse_id(role_id, "id")
        async with self.db.unit_of_work(org) as uow:
            await store.lock_organization(uow.conn, org)
            row = await store.get_role(uow.conn, org, rid, for_update=True)
            if row is None:
                raise NotFound(f"role {role_id} not found")
            held = await store.count_members_with_role(uow.conn, org, rid)
            invited = await store.count_pending_invitations_with_role(uow.conn, org, rid)
            if held or invited:
                raise FailedPrecondition(
                    f"the role is held by {held} member(s) and offered by {invited} pending invitation(s); "
                    "give them another role first", reason="ROLE_IN_USE",
                    metadata={"members": str(held), "invitations": str(invited)})
            await store.delete_role(uow.conn, org, rid)
            uow.audit("identity.role.delete", "role", str(rid),
                      before={"name": row["name"], "permissions": list(row["permissions"])})


def _actor_id(principal: Principal) -> uuid.UUID:
    try:
        return uuid.UUID(principal.subject)
    except ValueError:
        return uuid.UUID(int=0)


def invitation_state(row: dict[str, Any]) -> str:
    return rules.invitation_state(accepted_at=row["accepted_at"], revoked_at=row["revoked_at"],
                                  expires_at=row["expires_at"], now=datetime.now(UTC))


def invitation_role(row: dict[str, Any]) -> str:
    if row["role"] == roles.CUSTOM:
        return str(row["custom_role_id"]) if row["custom_role_id"] else ""
    return row["role"]
