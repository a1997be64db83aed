"""The development service principals of `make run` (after the migrations, before the services).

    python -m tools.devprincipals [SERVICE ...]        (default: every listed service)

With GIVANCE_DEV_PRINCIPALS=1 (the Makefile's `run` sets it), every service whose settings
declare `principal_permissions` (crm: comms.messages.send, ...; comms: crm.donors.read;
ai: crm.donors.read, ...) gets a
platform service principal at identity, named after it, with the development secret
`dev-principal-<service>` and that grant (created, or set back to it); tools.runall gives each
service the same credential (chassis.tenant_tokens.dev_principals). A service whose
<SERVICE>_PRINCIPAL_CLIENT_SECRET is set keeps the operator's own principal, untouched.
In production an operator creates them: `python -m services.identity.principals create`.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import MutableMapping, Sequence

from chassis.settings import ServiceSettings
from chassis.spec import listed_services
from chassis.tenant_tokens import dev_principals, dev_secret

BY = "make run"


async def bootstrap(admin_url: str, services: Sequence[str], environ: MutableMapping[str, str]) -> list[str]:
    """Creates (or sets back) the development principals; returns their names."""
    from chassis.db import Database, create_engine
    from services.identity.handlers import principals

    wanted = dev_principals(services, environ)
    if not wanted:
        return []
    admin = Database(create_engine(admin_url, pool_size=1, application_name="devprincipals"), "identity")
    try:
        for service, permissions in wanted.items():
            await principals.ensure(admin, service, list(permissions), dev_secret(service), BY)
    finally:
        await admin.dispose()
    return list(wanted)


def main(argv: list[str]) -> int:
    services = argv or listed_services()
    done = asyncio.run(bootstrap(ServiceSettings().admin_database_url(), services, os.environ))
    if done:
        print(f"devprincipals: development service principals of {', '.join(done)} are set up")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
