"""python -m services.crm.check_rollups [ORGANIZATION_ID ...]: crm.check_rollups, for an operator.

Every kept total (donors' hard and soft giving per currency, fund splits, pledges' received amounts,
live tax receipts) is summed again from the gifts and
compared with what crm keeps; each difference is printed as one tab-separated line (rollup,
key, kept, expected) and the exit status is 1 when there is any, 0 when there is none. Without
ids, every organization with a donor is checked: run it with the migrations' DATABASE_URL, whose
role sees every tenant (crm's own role sees one tenant per transaction).
"""

from __future__ import annotations

import asyncio
import sys
import uuid

from chassis.db import Database, create_engine
from services.crm.handlers.rollups import check_rollups, organizations
from services.crm.settings import CrmSettings


async def run(settings: CrmSettings, argv: list[str]) -> int:
    try:
        orgs = [uuid.UUID(a) for a in argv]
    except ValueError:
        print(__doc__.split("\n\n")[0], file=sys.stderr)
        return 2
    db = Database(create_engine(settings.admin_database_url(), pool_size=1, application_name="crm-check-rollups"),
                  "crm")
    try:
        found = 0
        for org in orgs or await organizations(db):
            for d in await check_rollups(db, org):
                found += 1
                print(f"{org}\t{d.rollup}\t{d.key}\tkept={d.kept}\texpected={d.expected}")
        checked = len(orgs) if orgs else "every"
        print(f"check_rollups: {found} differences; organizations checked: {checked}", file=sys.stderr)
        return 1 if found else 0
    finally:
        await db.dispose()


def main() -> None:
    sys.exit(asyncio.run(run(CrmSettings(), sys.argv[1:])))


if __name__ == "__main__":
    main()
