"""Database setup: roles, schemas and each service's Alembic history.

    python -m chassis.migrate              (every service listed in pyproject.toml)
    python -m chassis.migrate crm          (some of them)

As the administrative DATABASE_URL user it creates (idempotently) the database, the
`givance_owner` role that owns every schema and table (NOLOGIN), and one login role per
service, `givance_<service>`, that owns nothing, is no superuser, has no BYPASSRLS, and is
granted DML on its own schema only. Then it runs each service's migrations (its own
version table in its own schema) as givance_owner, declares the queues of the event
subscriptions its spec declares (chassis.spec), and sets up the service's own broker user
when its settings give it a password (chassis.broker).

Migrations call `tenant_table()` for every tenant-owned table (RLS enabled, forced, one
policy on app.tenant_id) and `outbox_tables()` for the outbox and inbox.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from chassis.settings import ServiceSettings, plain_dsn

OWNER_ROLE = "givance_owner"
ROOT = Path(__file__).resolve().parent.parent

TENANT_PREDICATE = "NULLIF(current_setting('app.tenant_id', true), '')::uuid"


def service_role(service: str) -> str:
    return f"givance_{service}"


def _password_clause(service: str) -> str:
    """<SERVICE>_DB_ROLE_PASSWORD, when set, becomes the role's password (managed PostgreSQL)."""
    import os

    password = os.environ.get(f"{service.upper()}_DB_ROLE_PASSWORD")
    if not password:
        return ""
    return " PASSWORD '" + password.replace("'", "''") + "'"


async def ensure_database(admin_url: str) -> None:
    url = make_url(admin_url)
    dbname = url.database
    conn = await asyncpg.connect(plain_dsn(url.set(database="postgres").render_as_string(hide_password=False)))
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", dbname):
            await conn.execute(f'CREATE DATABASE "{dbname}"')
    finally:
        await conn.close()


async def bootstrap(admin_url: str, services: list[str]) -> None:
    await ensure_database(admin_url)
    conn = await asyncpg.connect(plain_dsn(admin_url))
    try:
        # Roles are cluster-wide; two databases (dev, test) set them up concurrently at times.
        await conn.execute("SELECT pg_advisory_lock(727274)")
        await conn.execute(
            f"""
            DO $$ BEGIN
              IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{OWNER_ROLE}') THEN
                CREATE ROLE {OWNER_ROLE} NOLOGIN;
              END IF;
            END $$;
            """
        )
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        await conn.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
        # Trigram indexes that lead with organization_id (crm's search): btree_gin. All three
        # are trusted extensions (a database owner may create them; no superuser needed), and
        # nothing here alters an extension's functions (managed PostgreSQL refuses that).
        await conn.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
        for svc in services:
            role = service_role(svc)
            await conn.execute(
                f"""
                DO $$ BEGIN
                  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                    CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOINHERIT;
                  END IF;
                END $$;
                ALTER ROLE {role} NOSUPERUSER NOBYPASSRLS{_password_clause(svc)};
                CREATE SCHEMA IF NOT EXISTS {svc} AUTHORIZATION {OWNER_ROLE};
                REVOKE ALL ON SCHEMA {svc} FROM PUBLIC;
                GRANT USAGE ON SCHEMA {svc} TO {role};
                ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER_ROLE} IN SCHEMA {svc}
                  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role};
                ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER_ROLE} IN SCHEMA {svc}
                  GRANT USAGE, SELECT ON SEQUENCES TO {role};
                GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {svc} TO {role};
                GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {svc} TO {role};
                """
            )
        await conn.execute("SELECT pg_advisory_unlock(727274)")
    finally:
        await conn.close()


def upgrade(admin_url: str, service: str) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "services" / service / "migrations"))
    cfg.attributes["givance_url"] = admin_url
    cfg.attributes["givance_schema"] = service
    command.upgrade(cfg, "heads")


def declare_bus(amqp_url: str, exchange: str, service: str) -> int:
    """Declare a service's consumer queues, from the subscriptions its spec declares (before any
    service starts, so no event published in the meantime finds no queue). Returns how many."""
    from chassis.spec import load

    return asyncio.run(load(service).declare_bus(amqp_url, exchange))


def run_env(context) -> None:
    """The body of every service's migrations/env.py (online mode, asyncpg)."""
    from sqlalchemy import pool, text
    from sqlalchemy.ext.asyncio import create_async_engine

    cfg = context.config
    url = cfg.attributes.get("givance_url") or ServiceSettings().admin_database_url()
    schema = cfg.attributes["givance_schema"]

    def do_run(connection) -> None:
        connection.execute(text(f"SET ROLE {OWNER_ROLE}"))
        context.configure(connection=connection, version_table_schema=schema, version_table="alembic_version")
        with context.begin_transaction():
            context.run_migrations()

    async def main() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.connect() as conn:
            await conn.run_sync(do_run)
            await conn.commit()
        await engine.dispose()

    asyncio.run(main())


# -- helpers for migration scripts -------------------------------------------------------


def script(op, sql: str) -> None:
    """Run several SQL statements at once (asyncpg's simple query protocol)."""
    from sqlalchemy.util import await_only

    await_only(op.get_bind().connection.driver_connection.execute(sql))


def tenant_table(op, table: str, column: str = "organization_id") -> None:
    """Row-level security on a tenant-owned table: enabled, forced, one policy."""
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON {table} "
        f"USING ({column} = {TENANT_PREDICATE}) WITH CHECK ({column} = {TENANT_PREDICATE})"
    )


USER_PREDICATE = "NULLIF(current_setting('app.user_id', true), '')::uuid"


def own_rows_policy(op, table: str, column: str = "user_id") -> None:
    """A second, permissive policy: a user acting for themself (app.user_id set by the unit of
    work) sees their own rows in every tenant: their memberships, their sessions."""
    op.execute(
        f"CREATE POLICY own_rows ON {table} "
        f"USING ({column} = {USER_PREDICATE}) WITH CHECK ({column} = {USER_PREDICATE})"
    )


def outbox_tables(op, schema: str) -> None:
    """The transactional outbox and the consumers' inbox of one schema.

    Infrastructure, not tenant data: no API reads them, the relay must see every tenant's
    rows, so they key the tenant as tenant_id and carry no RLS policy.
    """
    script(
        op,
        f"""
        CREATE TABLE {schema}.outbox (
          id bigserial PRIMARY KEY,
          event_id uuid NOT NULL UNIQUE,
          routing_key text NOT NULL,
          tenant_id uuid NOT NULL,
          aggregate_id text NOT NULL,
          body bytea NOT NULL,
          headers jsonb NOT NULL DEFAULT '{{}}',
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          published_at timestamptz
        );
        CREATE INDEX outbox_unsent ON {schema}.outbox (id) WHERE published_at IS NULL;
        CREATE TABLE {schema}.inbox (
          consumer text NOT NULL,
          event_id uuid NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (consumer, event_id)
        );
        """
    )


def broker_user(amqp_url: str, exchange: str, service: str) -> str:
    """Create or update the service's own broker user (chassis.broker) when its settings give it a
    password (<SERVICE>_BROKER_PASSWORD); returns what was done, for the log."""
    from chassis import broker, events
    from chassis.spec import load

    password = load(service).settings().broker_password
    if not password:
        return f"connects as {broker.username(amqp_url)}"
    if not broker.ensure_service_user(amqp_url, exchange, events.DEAD_LETTER_EXCHANGE, service, password):
        return f"{broker.service_user(service)} must be created by the operator (no rabbitmqctl here)"
    return f"broker user {broker.service_user(service)} set up"


def main(argv: list[str]) -> None:
    import os

    from chassis.broker import dev_passwords
    from chassis.spec import listed_services

    services = argv or listed_services()
    dev_passwords(services, os.environ)  # make run: development broker users
    settings = ServiceSettings()
    admin = settings.admin_database_url()
    asyncio.run(bootstrap(admin, services))
    for svc in services:
        upgrade(admin, svc)
        queues = declare_bus(settings.rabbitmq_url, settings.events_exchange, svc)
        user = broker_user(settings.rabbitmq_url, settings.events_exchange, svc)
        print(f"migrate: {svc} at head, {queues} consumer queue(s) declared, {user}")


if __name__ == "__main__":
    main(sys.argv[1:])
