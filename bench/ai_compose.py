"""ai's piece of `bench email_session`: one email per donor written by the built-in composer,
through GenerateDonorEmail (gRPC to ai, ai's gRPC reads of the donor, gifts and todos from crm
with the caller's token, the composer, the answer) against the composer called in a plain loop
on the same donors' facts in this process. The ratio is the price of the service around the
composer; comms' session queue and draft storage come on top once comms calls it (docs/ai.md).

    bench ai_compose: N emails/s ratio=R loop=L p99=MS donors=D concurrency=C

    python -m bench.ai_compose        (starts identity, crm and ai on free ports; bench database)
"""

from __future__ import annotations

import asyncio
import sys
import time

import grpc
import uvloop
from givance.ai.v1 import generation_service_pb2, generation_service_pb2_grpc
from givance.crm.v1 import donation_pb2, donation_service_pb2, donation_service_pb2_grpc
from google.type import date_pb2, money_pb2

from bench import seed
from bench.lag import percentile

DONORS = 1000
CONCURRENCY = 16


async def add_gifts(crm_address: str, tenant: seed.Tenant) -> None:
    async with grpc.aio.insecure_channel(crm_address) as channel:
        stub = donation_service_pb2_grpc.DonationServiceStub(channel)

        async def one(i: int, donor: str) -> None:
            await stub.RecordDonation(donation_service_pb2.RecordDonationRequest(donation=donation_pb2.Donation(
                donor_id=donor, amount=money_pb2.Money(currency_code="USD", units=20 + i % 500),
                date=date_pb2.Date(year=2026, month=1 + i % 12, day=1 + i % 28))), metadata=tenant.metadata)

        for start in range(0, len(tenant.donor_ids), 50):
            await asyncio.gather(*(one(i, d) for i, d in enumerate(tenant.donor_ids[start:start + 50], start)))


async def plain_loop(crm_address: str, tenant: seed.Tenant) -> tuple[float, list[str]]:
    """The composer alone over the same donors' facts (read once, before timing)."""
    from services.ai.domain.composer import compose_email
    from services.ai.providers.crm import CrmReader

    reader = CrmReader(crm_address)
    facts = []
    for start in range(0, len(tenant.donor_ids), 50):
        facts += await asyncio.gather(*(reader.donor_facts(tenant.metadata, d)
                                        for d in tenant.donor_ids[start:start + 50]))
    await reader.close()
    bodies = []
    started = time.perf_counter()
    for f in facts:
        bodies.append(compose_email(f, signer="Bench Mark")[1])
    return len(facts) / (time.perf_counter() - started), bodies


async def through_ai(ai_address: str, tenant: seed.Tenant, concurrency: int) -> tuple[float, list[float], list[str]]:
    latencies: list[float] = []
    bodies: dict[str, str] = {}
    queue = list(tenant.donor_ids)
    async with grpc.aio.insecure_channel(ai_address) as channel:
        stub = generation_service_pb2_grpc.GenerationServiceStub(channel)

        async def worker() -> None:
            while queue:
                donor = queue.pop()
                t = time.perf_counter()
                resp = await stub.GenerateDonorEmail(generation_service_pb2.GenerateDonorEmailRequest(
                    donor_id=donor, signer_name="Bench Mark"), metadata=tenant.metadata)
                latencies.append((time.perf_counter() - t) * 1000)
                bodies[donor] = resp.body

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return len(bodies) / elapsed, latencies, [bodies[d] for d in tenant.donor_ids]


async def measure(identity: str, crm: str, ai: str, donors: int = DONORS, concurrency: int = CONCURRENCY,
                  progress=print) -> dict[str, float]:
    progress(f"ai_compose: seeding {donors} donors with one gift each")
    tenant = await seed.seed(identity, crm, donors)
    await add_gifts(crm, tenant)
    loop_rate, loop_bodies = await plain_loop(crm, tenant)
    await through_ai(ai, seed.Tenant(tenant.org_id, tenant.access_token, tenant.donor_ids[:50]), concurrency)  # warm
    rate, latencies, bodies = await through_ai(ai, tenant, concurrency)
    assert bodies == loop_bodies, "the service wrote other emails than the composer alone"
    return {"rate": rate, "loop": loop_rate, "p99": percentile(latencies, 99), "donors": donors}


def main() -> None:
    import os

    from bench.__main__ import progress, report
    from bench.stack import Processes, free_ports, recreate, stack_from_env, wait_healthy

    stack = stack_from_env()
    os.environ.update(stack.env())
    recreate(stack)
    procs = Processes()
    try:
        ports = dict(zip(("identity", "crm", "ai"), free_ports(3), strict=True))
        addr = {n: f"127.0.0.1:{p}" for n, p in ports.items()}
        for name, port in ports.items():
            procs.start(name, f"services.{name}", env=stack.env(**{f"{name.upper()}_PORT": str(port)},
                                                                IDENTITY_ADDRESS=addr["identity"],
                                                                CRM_ADDRESS=addr["crm"]))

        async def run() -> None:
            for a in addr.values():
                await wait_healthy(a, procs, timeout=180)
            f = await measure(addr["identity"], addr["crm"], addr["ai"], progress=progress)
            report("ai_compose", f["rate"], "emails/s", ratio=f"{f['rate'] / f['loop']:.4f}",
                   loop=f"{f['loop']:.0f}", p99=f"{f['p99']:.1f}ms", donors=f["donors"], concurrency=CONCURRENCY)

        uvloop.run(run())
    finally:
        procs.stop_all()
    sys.exit(0)


if __name__ == "__main__":
    main()
