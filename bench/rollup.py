"""bench rollup and bench rollup_check (issue 16).

    bench rollup: N gifts/s ratio=R plain=P errors=E
    bench rollup_check: S seconds gifts=G soft_credits=C differences=0

rollup records gifts with two soft credits and a three-fund split through RecordDonation, set
against plain gifts (seed.record_donation_requests) recorded by the same load client with the
same concurrency in the same run, interleaved, the best of ROUNDS each: the ratio is what
keeping the soft totals and the split exact in the writing transaction costs.

rollup_check seeds GIFTS gifts (1,000,000 unless BENCH_ROLLUP_GIFTS says fewer), each with two
soft credits and a three-fund split, straight into a new organization's tables with SQL, builds
their kept totals with SQL, and times crm.check_rollups (handlers.rollups) over them: it must
find no difference.

    python -m bench.rollup     (only these two figures, on a fresh stack)
"""

from __future__ import annotations

import os
import signal
import sys
import time
import uuid

import asyncpg
import grpc
from givance.crm.v1 import (
    donation_pb2,
    donation_service_pb2,
    fund_pb2,
    fund_service_pb2,
    fund_service_pb2_grpc,
)
from google.type import date_pb2, money_pb2

from bench import seed
from bench.load import LoadResult, LoadSpec, run

GIFTS = int(os.environ.get("BENCH_ROLLUP_GIFTS", "1000000"))
CHECK_DONORS = 20_000


async def create_funds(crm_address: str, tenant: seed.Tenant) -> list[str]:
    async with grpc.aio.insecure_channel(crm_address) as channel:
        stub = fund_service_pb2_grpc.FundServiceStub(channel)
        return [(await stub.CreateFund(fund_service_pb2.CreateFundRequest(fund=fund_pb2.Fund(name=f"Fund {i}")),
                                       metadata=tenant.metadata)).fund.id for i in range(3)]


def _usd(units: int) -> money_pb2.Money:
    return money_pb2.Money(currency_code="USD", units=units)


def rollup_requests(tenant: seed.Tenant, funds: list[str]) -> list[bytes]:
    """One gift per donor, soft-crediting the next two donors, split over three funds."""
    ids = tenant.donor_ids
    return [
        donation_service_pb2.RecordDonationRequest(donation=donation_pb2.Donation(
            donor_id=d, amount=_usd(30), date=date_pb2.Date(year=2026, month=3, day=1),
            payment_method=donation_pb2.PAYMENT_METHOD_CHECK,
            soft_credits=[donation_pb2.SoftCredit(donor_id=ids[(i + k) % len(ids)], amount=_usd(30),
                                                  role=donation_pb2.SOFT_CREDIT_ROLE_SOLICITOR) for k in (1, 2)],
            allocations=[donation_pb2.FundAllocation(fund_id=f, amount=_usd(10)) for f in funds],
        )).SerializeToString()
        for i, d in enumerate(ids)
    ]


async def measure_rollup(crm_address: str, tenant: seed.Tenant, *, concurrency: int, warmup: float, window: float,
                         rounds: int, settle, progress) -> str:
    funds = await create_funds(crm_address, tenant)
    targets = {"plain": seed.record_donation_requests(tenant), "rollup": rollup_requests(tenant, funds)}
    best: dict[str, LoadResult] = {}
    for round_no in range(1, rounds + 1):
        for name, payloads in targets.items():
            result = await run(LoadSpec(target=crm_address, method=seed.RECORD_DONATION, payloads=payloads,
                                        metadata=tenant.metadata, concurrency=concurrency, warmup=warmup,
                                        window=window))
            if result.errors:
                progress(f"rollup {name}: errors {result.errors}, first: {result.first_error}")
            progress(f"round {round_no}: {name} {result.rate:.0f} gifts/s")
            if name not in best or result.rate > best[name].rate:
                best[name] = result
            await settle()
    r, p = best["rollup"], best["plain"]
    return (f"bench rollup: {r.rate:.0f} gifts/s ratio={r.rate / p.rate:.2f} plain={p.rate:.0f} "
            f"errors={sum(r.errors.values())}")


_SEED = """
WITH src AS MATERIALIZED (
  SELECT n, gen_random_uuid() AS id, 30 + (n % 7) AS amount FROM generate_series($6::int, $6::int + $4::int - 1) AS n
), g AS (
  INSERT INTO crm.donations (id, organization_id, donor_id, amount, currency, date, payment_method)
  SELECT id, $1::uuid, ($2::uuid[])[1 + n % $3], amount, 'USD', DATE '2020-01-01' + (n % 2000), 'check' FROM src
), s AS (
  INSERT INTO crm.soft_credits (id, organization_id, donation_id, donor_id, role, amount)
  SELECT gen_random_uuid(), $1::uuid, src.id, ($2::uuid[])[1 + (n + k) % $3], 'solicitor', src.amount
  FROM src, (VALUES (1), (2)) AS k(k)
)
INSERT INTO crm.gift_allocations (organization_id, donation_id, fund_id, amount)
SELECT $1::uuid, src.id, f.fund_id, CASE f.n WHEN 3 THEN src.amount - 20 ELSE 10 END
FROM src, unnest($5::uuid[]) WITH ORDINALITY AS f(fund_id, n)
"""

_TOTALS = """
INSERT INTO crm.donor_giving (organization_id, donor_id, currency, lifetime_amount, donation_count, first_gift_date,
  last_gift_date)
SELECT organization_id, donor_id, currency, sum(amount - refunded_amount), count(*), min(date), max(date)
FROM crm.donations WHERE organization_id = $1::uuid AND refunded_amount < amount GROUP BY 1, 2, 3
ON CONFLICT (donor_id, currency) DO UPDATE SET lifetime_amount = EXCLUDED.lifetime_amount,
  donation_count = EXCLUDED.donation_count, first_gift_date = EXCLUDED.first_gift_date,
  last_gift_date = EXCLUDED.last_gift_date;
INSERT INTO crm.donor_soft_giving (organization_id, donor_id, currency, soft_amount, soft_count, first_gift_date,
  last_gift_date)
SELECT s.organization_id, s.donor_id, d.currency, sum(LEAST(s.amount, d.amount - d.refunded_amount)), count(*),
  min(d.date), max(d.date)
FROM crm.soft_credits s JOIN crm.donations d ON d.organization_id = s.organization_id AND d.id = s.donation_id
  AND d.refunded_amount < d.amount
WHERE s.organization_id = $1::uuid GROUP BY 1, 2, 3
ON CONFLICT (donor_id, currency) DO UPDATE SET soft_amount = EXCLUDED.soft_amount, soft_count = EXCLUDED.soft_count,
  first_gift_date = EXCLUDED.first_gift_date, last_gift_date = EXCLUDED.last_gift_date;
"""


async def measure_check(identity_address: str, crm_address: str, database_url: str, progress) -> str:
    """A new organization with GIFTS gifts seeded by SQL, then crm.check_rollups timed over them."""
    from chassis.db import Database, create_engine
    from chassis.settings import ServiceSettings
    from services.crm.handlers.rollups import check_rollups

    tenant = await seed.seed(identity_address, crm_address, 50)
    funds = await create_funds(crm_address, tenant)
    org = uuid.UUID(tenant.org_id)
    conn = await asyncpg.connect(database_url)
    try:
        donors = [uuid.uuid4() for _ in range(CHECK_DONORS)]
        await conn.execute(
            "INSERT INTO crm.donors (id, organization_id, first_name, last_name) "
            "SELECT d, $1::uuid, 'Check', 'Donor' FROM unnest($2::uuid[]) AS d", org, donors)
        t0 = time.monotonic()
        # The bench's own seed, as the superuser: triggers (the split check, foreign keys) are off
        # while it writes rows that are consistent by construction.
        await conn.execute("SET session_replication_role = replica")
        step = 100_000
        for start in range(0, GIFTS, step):
            await conn.execute(_SEED, org, donors, len(donors), min(step, GIFTS - start), [uuid.UUID(f) for f in funds],
                               start)
            progress(f"rollup_check: {min(start + step, GIFTS)} of {GIFTS} gifts seeded")
        await conn.execute(_TOTALS.split(";")[0], org)
        await conn.execute(_TOTALS.split(";")[1], org)
        await conn.execute("ANALYZE crm.donations; ANALYZE crm.soft_credits; ANALYZE crm.gift_allocations")
        progress(f"rollup_check: seeded in {time.monotonic() - t0:.0f}s")
    finally:
        await conn.close()
    db = Database(create_engine(ServiceSettings(database_url=database_url).app_database_url("crm"), pool_size=1),
                  "crm")
    try:
        t0 = time.monotonic()
        found = await check_rollups(db, org)
        seconds = time.monotonic() - t0
    finally:
        await db.dispose()
    return (f"bench rollup_check: {seconds:.1f} seconds gifts={GIFTS} soft_credits={2 * GIFTS} "
            f"differences={len(found)}")


def main() -> None:
    import uvloop

    from bench.__main__ import CONCURRENCY, DONORS, ROUNDS, WARMUP_SECONDS, WINDOW_SECONDS, progress, start_servers
    from bench.stack import Processes, recreate, stack_from_env, wait_healthy
    from bench.stack import wait_outbox_drained as drained

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    stack = stack_from_env()
    os.environ.update(stack.env())
    recreate(stack)
    procs = Processes()
    try:
        addrs = start_servers(procs, stack)

        async def go() -> None:
            for address in addrs.services.values():
                await wait_healthy(address, procs)
            tenant = await seed.seed(addrs.identity, addrs.crm, DONORS)
            print(await measure_rollup(addrs.crm, tenant, concurrency=CONCURRENCY, warmup=WARMUP_SECONDS,
                                       window=WINDOW_SECONDS, rounds=ROUNDS, settle=lambda: drained(stack, "crm"),
                                       progress=progress), flush=True)
            print(await measure_check(addrs.identity, addrs.crm, stack.database_url, progress), flush=True)
            procs.check_alive()

        uvloop.run(go())
    finally:
        procs.stop_all()


if __name__ == "__main__":
    main()
