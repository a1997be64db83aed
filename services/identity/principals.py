"""python -m services.identity.principals: the platform's service principals (crm, ai, ...).

    python -m services.identity.principals create NAME PERMISSION...   (prints the secret, once)
    python -m services.identity.principals grant NAME PERMISSION...    (replaces the grant)
    python -m services.identity.principals rotate NAME                 (prints the new secret)
    python -m services.identity.principals revoke NAME
    python -m services.identity.principals list

A principal is a service's own credential: its name is the client id, and the service trades it
with its secret for a short-lived token of one organization (TenantTokenService.IssueTenantToken,
chassis.tenant_tokens). Run with the migrations' DATABASE_URL: it writes
identity.service_principals as givance_owner, which identity's own database role can only read,
so no API can make one. Each change is recorded in the platform trail with the operating-system
user who ran it (`python -m services.identity.operators activity`). The secret goes to the service
as <NAME>_PRINCIPAL_CLIENT_SECRET (and its name as <NAME>_PRINCIPAL_CLIENT_ID).
"""

from __future__ import annotations

import asyncio
import sys

from chassis.db import Database, create_engine
from chassis.errors import ServiceError
from services.identity.handlers import principals
from services.identity.operators import actor
from services.identity.settings import IdentitySettings

SCHEMA = "identity"
USAGE = __doc__.split("\n\n")[1]


async def run(settings: IdentitySettings, argv: list[str]) -> int:
    admin = Database(create_engine(settings.admin_database_url(), pool_size=1, application_name="identity-principals"),
                     SCHEMA)
    # A revocation must outlive every token it refuses.
    horizon = settings.tenant_token_ttl_seconds + 60.0
    try:
        command, args = (argv[0], argv[1:]) if argv else ("", [])
        if command == "create" and len(args) >= 2:
            row, secret = await principals.create(admin, args[0], args[1:], actor())
            print(f"service principal {row.name} ({', '.join(row.permissions)}); its secret, shown once:")
            print(secret)
        elif command == "grant" and len(args) >= 2:
            row = await principals.grant(admin, args[0], args[1:], actor(), horizon)
            print(f"service principal {row.name}: {', '.join(row.permissions)}")
        elif command == "rotate" and len(args) == 1:
            secret = await principals.rotate(admin, args[0], actor(), horizon)
            print(f"service principal {args[0]}: a new secret (the old one and its tokens stop working):")
            print(secret)
        elif command == "revoke" and len(args) == 1:
            if await principals.revoke(admin, args[0], actor(), horizon):
                print(f"service principal {args[0]} revoked: no more tokens, and the ones it holds stop working")
            else:
                print(f"{args[0]} was not a live service principal")
        elif command == "list" and not args:
            for p in await principals.list_principals(admin):
                state = f"revoked {p.revoked_at.isoformat()}" if p.revoked_at else "live"
                print(f"{p.name}\t{','.join(p.permissions)}\t{state}\t{p.created_by}\t{p.updated_at.isoformat()}")
        else:
            print(USAGE, file=sys.stderr)
            return 2
        return 0
    except ServiceError as err:
        print(f"principals: {err.message}", file=sys.stderr)
        for field, description in getattr(err, "violations", ()):
            print(f"  {field}: {description}", file=sys.stderr)
        return 1
    finally:
        await admin.dispose()


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(IdentitySettings(), sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
