"""python -m services.identity.republish: re-announce every active membership
(identity.member.joined) so crm's member replica catches up, e.g. after an upgrade that
introduced it. Run with the migrations' DATABASE_URL (it lists every organization); it writes
to identity's outbox as each tenant, and the running identity service's relay publishes."""

from __future__ import annotations

import asyncio
import sys

from chassis.db import Database, create_engine
from services.identity.handlers.replicas import live_organizations, republish_members
from services.identity.settings import IdentitySettings

SCHEMA = "identity"


async def run(settings: IdentitySettings) -> int:
    admin = Database(create_engine(settings.admin_database_url(), pool_size=1, application_name="identity-republish"),
                     SCHEMA)
    db = Database(create_engine(settings.app_database_url(SCHEMA), pool_size=1, application_name="identity-republish"),
                  SCHEMA)
    try:
        return await republish_members(db, await live_organizations(admin))
    finally:
        await db.dispose()
        await admin.dispose()


def main() -> int:
    published = asyncio.run(run(IdentitySettings()))
    print(f"republished identity.member.joined for {published} active membership(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
