"""python -m services.identity: the service's declaration; the chassis builds it (chassis.spec).

identity verifies the tokens it signs with its own keys (no JWKS call to itself) and lists the
revocations from its own table (no RevocationService call to itself), so its own
dependencies (sealing keyring, signing keys loaded at start, password hasher) come first."""

from __future__ import annotations

from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2 import Type as Argon2Type

from chassis.spec import Built, ServiceSpec
from services.identity.api.accounts import AccountServicer
from services.identity.api.audit import AuditServicer
from services.identity.api.identity import IdentityServicer
from services.identity.api.memberships import MembershipServicer
from services.identity.api.mfa import MfaServicer
from services.identity.api.operator import OperatorServicer
from services.identity.api.organizations import OrganizationServicer
from services.identity.api.revocations import RevocationServicer
from services.identity.api.sessions import SessionServicer
from services.identity.api.staff import StaffServicer
from services.identity.api.tenant_tokens import TenantTokenServicer
from services.identity.consumers import SUBSCRIPTIONS
from services.identity.crypto import Keyring
from services.identity.handlers import audit, lifecycle, revocations
from services.identity.handlers.deps import Deps
from services.identity.handlers.keys import SigningKeys
from services.identity.settings import IdentitySettings


def password_hasher(s: IdentitySettings) -> PasswordHasher:
    return PasswordHasher(time_cost=s.argon2_time_cost, memory_cost=s.argon2_memory_kib,
                          parallelism=s.argon2_parallelism, type=Argon2Type.ID)


@dataclass
class Own:
    keyring: Keyring
    keys: SigningKeys
    hasher: PasswordHasher
    deps: Deps | None = None  # built with the servicers; the background erasures use it too


async def dependencies(b: Built[IdentitySettings]) -> Own:
    b.settings.refuse_dev_keys()
    # A revocation matters while a token it refuses may still be valid: the access-token lifetime.
    b.revocations.horizon = b.settings.access_token_ttl_seconds + 60.0
    keyring = Keyring(b.settings.encryption_keys)
    keys = SigningKeys(b.db, keyring, access_ttl=b.settings.access_token_ttl_seconds)
    await keys.load_or_create()
    return Own(keyring, keys, password_hasher(b.settings))


def servicers(b: Built[IdentitySettings]) -> list[object]:
    s, own = b.settings, b.own
    deps = Deps(settings=s, db=b.db, keys=own.keys, keyring=own.keyring, hasher=own.hasher, verifier=b.verifier,
                revocations=b.revocations)
    own.deps = deps
    return [servicer(deps) for servicer in (IdentityServicer, OrganizationServicer, AccountServicer, MfaServicer,
                                            MembershipServicer, SessionServicer, AuditServicer, StaffServicer,
                                            RevocationServicer, TenantTokenServicer, OperatorServicer)]


def background(b: Built[IdentitySettings]) -> list:
    # Another replica's key rotation is picked up within a minute; audit partitions at start, then daily.
    # Expired revocations are pruned every few minutes; closed organizations erased when due.
    return [b.own.keys.run_reloader, lambda: audit.maintain_partitions(b.db), lambda: revocations.prune_forever(b.db),
            lambda: lifecycle.erase_due_forever(b.own.deps)]


SPEC = ServiceSpec(name="identity", settings=IdentitySettings, servicers=servicers, subscriptions=SUBSCRIPTIONS,
                   dependencies=dependencies, jwks=lambda b: b.own.keys.jwks, background=background,
                   revocations=lambda b: revocations.source(b.db))
build = SPEC.build  # build(settings=None, *, verifier=None) -> ServiceHost, as the tests call it

if __name__ == "__main__":
    SPEC.serve()
