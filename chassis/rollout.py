"""Wait until a service's schema is at the head of its migrations. Each Kubernetes Deployment
runs this in an init container, so a new version starts only once the migrations Job has
finished (deploy/k8s/base/migrate):

    python -m chassis.rollout crm [--timeout SECONDS]

It connects as the service's own role (givance_<service>, the password from
<SERVICE>_DB_ROLE_PASSWORD), which may read its schema's alembic_version.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

import asyncpg

from chassis.migrate import ROOT
from chassis.settings import plain_dsn

log = logging.getLogger(__name__)


def heads(service: str) -> set[str]:
    """The head revisions of the service's migrations, from its scripts."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "services" / service / "migrations"))
    return set(ScriptDirectory.from_config(cfg).get_heads())


async def applied(dsn: str, schema: str) -> set[str]:
    """The revisions the database says it is at; empty while it cannot tell (not migrated yet,
    or not reachable)."""
    try:
        conn = await asyncpg.connect(dsn, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        log.info("rollout: database not reachable yet (%s)", type(exc).__name__)
        return set()
    try:
        rows = await conn.fetch(f'SELECT version_num FROM "{schema}".alembic_version')
    except asyncpg.PostgresError as exc:
        log.info("rollout: %s not migrated yet (%s)", schema, type(exc).__name__)
        return set()
    finally:
        await conn.close()
    return {r["version_num"] for r in rows}


async def wait(dsn: str, service: str, timeout: float, interval: float = 2.0,
               wanted: set[str] | None = None) -> bool:
    """True once the schema is at `wanted` (the heads), False if `timeout` passes first."""
    wanted = heads(service) if wanted is None else wanted
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if await applied(dsn, service) == wanted:
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(interval)


def main(argv: list[str]) -> int:
    from chassis.spec import load

    args = argparse.ArgumentParser(prog="python -m chassis.rollout")
    args.add_argument("service")
    args.add_argument("--timeout", type=float, default=900.0)
    ns = args.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    dsn = plain_dsn(load(ns.service).settings().app_database_url(ns.service))
    if asyncio.run(wait(dsn, ns.service, ns.timeout)):
        log.info("rollout: %s is at the head of its migrations", ns.service)
        return 0
    log.error("rollout: %s is not at the head of its migrations after %.0fs; has the migrations Job run?",
              ns.service, ns.timeout)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
