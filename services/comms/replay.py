"""python -m services.comms.replay: the operator's view of stored provider webhooks.

    python -m services.comms.replay list [--pending] [--limit N]   newest first: id, provider, event,
                                                                  processed or the error
    python -m services.comms.replay replay ID [ID ...]            apply stored events again
    python -m services.comms.replay replay --pending              every event not applied yet

Applying is idempotent (the email event it makes names the webhook event, once), so replaying an
applied event changes nothing, and one whose applying failed is applied now. Run with the
migrations' DATABASE_URL: the list spans every organization; each event is then applied as its
own organization, under row-level security, its events through comms' outbox."""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid

from chassis.db import Database, create_engine
from services.comms.handlers import webhooks
from services.comms.settings import CommsSettings
from services.comms.store import webhooks as store

SCHEMA = "comms"


async def run(settings: CommsSettings, args: argparse.Namespace, out=sys.stdout) -> int:
    admin = Database(create_engine(settings.admin_database_url(), pool_size=1, application_name="comms-replay"),
                     SCHEMA)
    db = Database(create_engine(settings.app_database_url(SCHEMA), pool_size=1, application_name="comms-replay"),
                  SCHEMA)
    try:
        if args.command == "list":
            async with admin.unit_of_work(None) as uow:
                rows = await store.every(uow.conn, pending_only=args.pending, limit=args.limit)
            for r in rows:
                state = "processed" if r["processed_at"] else f"pending attempts={r['attempts']} {r['error']}".strip()
                print(f"{r['id']} {r['created_at']:%Y-%m-%dT%H:%M:%S} {r['provider']} {r['event_type']} {state}",
                      file=out)
            return 0
        ids = [uuid.UUID(i) for i in args.ids]
        if args.pending:
            async with admin.unit_of_work(None) as uow:
                ids += [r["id"] for r in await store.every(uow.conn, pending_only=True, limit=10_000)]
        failed = 0
        for row_id in ids:
            async with admin.unit_of_work(None) as uow:
                org = await store.tenant_of(uow.conn, row_id)
            outcome = "unknown-event" if org is None else await webhooks.apply(db, org, row_id)
            failed += outcome in ("failed", "unknown-event")
            print(f"{row_id} {outcome}", file=out)
        return 1 if failed else 0
    finally:
        await db.dispose()
        await admin.dispose()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m services.comms.replay", description=__doc__.split("\n")[0])
    commands = p.add_subparsers(dest="command", required=True)
    ls = commands.add_parser("list", help="stored webhook events, newest first")
    ls.add_argument("--pending", action="store_true", help="only those not applied")
    ls.add_argument("--limit", type=int, default=100)
    rp = commands.add_parser("replay", help="apply stored webhook events again (idempotent)")
    rp.add_argument("ids", nargs="*", help="webhook event ids (from list)")
    rp.add_argument("--pending", action="store_true", help="every event not applied yet")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "replay" and not args.ids and not args.pending:
        parser().error("name webhook event ids, or --pending")
    try:
        for i in getattr(args, "ids", []):
            uuid.UUID(i)
    except ValueError:
        parser().error("a webhook event id is a UUID")
    return asyncio.run(run(CommsSettings(), args))


if __name__ == "__main__":
    sys.exit(main())
