"""python -m services.identity: wiring happens in build(), not at import (the tests call build too)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2 import Type as Argon2Type
from givance.identity.v1 import identity_service_pb2_grpc, organization_service_pb2_grpc

from chassis import telemetry
from chassis.auth import JwksCache, TokenVerifier
from chassis.crypto import Keyring
from chassis.db import Database, create_engine
from chassis.outbox import OutboxRelay
from chassis.server import Registration, ServiceHost
from chassis.settings import plain_dsn
from services.identity.api.identity import IdentityServicer
from services.identity.api.organizations import OrganizationServicer
from services.identity.handlers.accounts import Accounts
from services.identity.handlers.keys import SigningKeys
from services.identity.settings import IdentitySettings

SCHEMA = "identity"


def password_hasher(s: IdentitySettings) -> PasswordHasher:
    return PasswordHasher(time_cost=s.argon2_time_cost, memory_cost=s.argon2_memory_kib,
                          parallelism=s.argon2_parallelism, type=Argon2Type.ID)


async def build(s: IdentitySettings) -> ServiceHost:
    telemetry.setup("identity", s.otlp_endpoint)
    s.warn_if_dev_keys()
    app_url = s.app_database_url(SCHEMA)
    db = Database(create_engine(app_url, pool_size=s.db_pool_size, application_name="identity"), SCHEMA)
    keys = SigningKeys(db, Keyring(s.encryption_keys))
    await keys.load_or_create()
    accounts = Accounts(db, keys, password_hasher(s), s.access_token_ttl_seconds, s.refresh_token_ttl_seconds)
    verifier = TokenVerifier(JwksCache(keys.jwks))
    relay = OutboxRelay(plain_dsn(app_url), SCHEMA, s.rabbitmq_url, s.events_exchange)
    host = ServiceHost(
        name="identity", host=s.host, port=s.port, verifier=verifier, grace_seconds=s.grace_seconds,
        registrations=[
            Registration("givance.identity.v1.IdentityService",
                         identity_service_pb2_grpc.add_IdentityServiceServicer_to_server,
                         IdentityServicer(accounts, keys)),
            Registration("givance.identity.v1.OrganizationService",
                         organization_service_pb2_grpc.add_OrganizationServiceServicer_to_server,
                         OrganizationServicer(accounts)),
        ],
    )
    host.background.append(relay.run)
    host.workers.append(relay)
    host.on_stop.append(db.dispose)
    return host


async def main() -> None:
    host = await build(IdentitySettings())
    await host.serve_until_signalled()


if __name__ == "__main__":
    from chassis.server import run

    run(main)
