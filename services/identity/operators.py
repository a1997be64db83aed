"""python -m services.identity.operators grant|revoke|list|activity: the platform's operators.

    python -m services.identity.operators grant EMAIL [PERMISSION ...]   (none: platform.*)
    python -m services.identity.operators revoke EMAIL
    python -m services.identity.operators list
    python -m services.identity.operators activity [N]                   (the platform trail)

Run with the migrations' DATABASE_URL: it writes identity.platform_operators as givance_owner,
which identity's own database role can only read, so no API can make an operator. Each grant
and revocation is recorded in the platform trail with the operating-system user who ran it.
A grant shows in the operator's next token (sign in again); a revocation stops their platform
calls at once (each one re-reads the grant) and drops the permissions from their next token.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import sys

from chassis.db import Database, create_engine
from chassis.errors import ServiceError
from services.identity.handlers import platform
from services.identity.settings import IdentitySettings

SCHEMA = "identity"
USAGE = __doc__.split("\n\n")[1]


def actor() -> str:
    try:
        return f"command:{getpass.getuser()}"
    except (KeyError, OSError):
        return "command:unknown"


async def run(settings: IdentitySettings, argv: list[str]) -> int:
    admin = Database(create_engine(settings.admin_database_url(), pool_size=1, application_name="identity-operators"),
                     SCHEMA)
    try:
        command, args = (argv[0], argv[1:]) if argv else ("", [])
        if command == "grant" and args:
            perms = await platform.grant(admin, args[0], args[1:], actor())
            print(f"{args[0]} is a platform operator: {', '.join(perms)} (from their next sign-in)")
        elif command == "revoke" and len(args) == 1:
            if await platform.revoke(admin, args[0], actor()):
                print(f"{args[0]} is no longer a platform operator")
            else:
                print(f"{args[0]} was not a platform operator")
        elif command == "list" and not args:
            for op in await platform.list_operators(admin):
                print(f"{op.email}\t{','.join(op.permissions)}\t{op.granted_by}\t{op.granted_at.isoformat()}")
        elif command == "activity" and len(args) <= 1 and all(a.isdigit() for a in args):
            for r in await platform.recent(admin, int(args[0]) if args else 20):
                print(f"{r.occurred_at.isoformat()}\t{r.actor}\t{r.action}\t{r.resource_type}/{r.resource_id}\t"
                      f"{json.dumps(r.detail, sort_keys=True)}")
        else:
            print(USAGE, file=sys.stderr)
            return 2
        return 0
    except ServiceError as err:
        print(f"operators: {err.message}", file=sys.stderr)
        return 1
    finally:
        await admin.dispose()


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(IdentitySettings(), sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
