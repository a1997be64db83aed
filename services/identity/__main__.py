"""python -m services.identity: wiring happens in build(), not at import (the tests call build too)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2 import Type as Argon2Type
from givance.identity.v1 import (
    account_service_pb2_grpc,
    audit_service_pb2_grpc,
    identity_service_pb2_grpc,
    membership_service_pb2_grpc,
    mfa_service_pb2_grpc,
    organization_service_pb2_grpc,
    session_service_pb2_grpc,
    staff_service_pb2_grpc,
)

from chassis import telemetry
from chassis.auth import JwksCache, TokenVerifier
from chassis.crypto import Keyring
from chassis.db import Database, create_engine
from chassis.revocation import RevocationList
from chassis.server import Registration, ServiceHost, attach_event_machinery
from chassis.settings import plain_dsn
from services.identity.api.accounts import AccountServicer
from services.identity.api.audit import AuditServicer
from services.identity.api.identity import IdentityServicer
from services.identity.api.memberships import MembershipServicer
from services.identity.api.mfa import MfaServicer
from services.identity.api.organizations import OrganizationServicer
from services.identity.api.sessions import SessionServicer
from services.identity.api.staff import StaffServicer
from services.identity.consumers import SUBSCRIPTIONS
from services.identity.handlers import audit
from services.identity.handlers.accounts import Accounts
from services.identity.handlers.deps import Deps
from services.identity.handlers.keys import SigningKeys
from services.identity.settings import IdentitySettings

SCHEMA = "identity"


def password_hasher(s: IdentitySettings) -> PasswordHasher:
    return PasswordHasher(time_cost=s.argon2_time_cost, memory_cost=s.argon2_memory_kib,
                          parallelism=s.argon2_parallelism, type=Argon2Type.ID)


def _registrations(deps: Deps, accounts: Accounts) -> list[Registration]:
    def reg(name: str, add, servicer) -> Registration:
        return Registration(f"givance.identity.v1.{name}", add, servicer)

    return [
        reg("IdentityService", identity_service_pb2_grpc.add_IdentityServiceServicer_to_server,
            IdentityServicer(accounts, deps.keys)),
        reg("OrganizationService", organization_service_pb2_grpc.add_OrganizationServiceServicer_to_server,
            OrganizationServicer(accounts)),
        reg("AccountService", account_service_pb2_grpc.add_AccountServiceServicer_to_server, AccountServicer(deps)),
        reg("MfaService", mfa_service_pb2_grpc.add_MfaServiceServicer_to_server, MfaServicer(deps)),
        reg("MembershipService", membership_service_pb2_grpc.add_MembershipServiceServicer_to_server,
            MembershipServicer(deps, accounts)),
        reg("SessionService", session_service_pb2_grpc.add_SessionServiceServicer_to_server, SessionServicer(deps)),
        reg("AuditService", audit_service_pb2_grpc.add_AuditServiceServicer_to_server, AuditServicer(deps)),
        reg("StaffService", staff_service_pb2_grpc.add_StaffServiceServicer_to_server, StaffServicer(deps)),
    ]


async def build(s: IdentitySettings) -> ServiceHost:
    telemetry.setup("identity", s.otlp_endpoint)
    s.warn_if_dev_keys()
    app_url = s.app_database_url(SCHEMA)
    db = Database(create_engine(app_url, pool_size=s.db_pool_size, application_name="identity"), SCHEMA)
    keyring = Keyring(s.encryption_keys)
    keys = SigningKeys(db, keyring, access_ttl=s.access_token_ttl_seconds)
    await keys.load_or_create()
    hasher = password_hasher(s)
    revocations = RevocationList()
    verifier = TokenVerifier(JwksCache(keys.jwks))
    verifier.extra_checks.append(revocations.check)
    deps = Deps(settings=s, db=db, keys=keys, keyring=keyring, hasher=hasher, verifier=verifier,
                revocations=revocations)
    accounts = Accounts(db, keys, hasher, s.access_token_ttl_seconds, s.refresh_token_ttl_seconds)
    host = ServiceHost(name="identity", host=s.host, port=s.port, verifier=verifier, grace_seconds=s.grace_seconds,
                       registrations=_registrations(deps, accounts))
    # Another replica's key rotation is picked up within a minute; audit partitions at start, then daily.
    host.background += [keys.run_reloader, lambda: audit.maintain_partitions(db)]
    attach_event_machinery(host, db, dsn=plain_dsn(app_url), amqp_url=s.rabbitmq_url, exchange=s.events_exchange,
                           subscriptions=SUBSCRIPTIONS, revocations=revocations)
    return host


async def main() -> None:
    host = await build(IdentitySettings())
    await host.serve_until_signalled()


if __name__ == "__main__":
    from chassis.server import run

    run(main)
