"""Stripe webhooks into billing: verified, stored and acknowledged, against a bare handler that
only verifies the signature; and usage events consumed per second.

    bench webhook: N events/s ratio=R bare=B p99=P ms errors=E
    bench usage_count: N events/s events=M seconds=S

The webhook figure posts signed events (each a new event id, so each is stored: a
`charge.updated` event, which billing keeps raw and acknowledges) to billing's webhook host and
the same bodies to `bench.webhook_bare` (the same HttpHost settings, the same verification call),
with the same load client (bench.load, HTTP/1.1 keep-alive) and concurrency, interleaved, each
the best of `rounds`. usage_count publishes `events` usage events (comms.email.sent) for one
organization on the events exchange and times billing's consumer until its counter has them all.

    python -m bench.webhook      just these figures (starts the stack, seeds, measures, stops)
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
import uuid

import aio_pika
import asyncpg
import grpc
import uvloop
from givance.billing.v1 import gateway_config_pb2
from givance.billing.v1 import gateway_config_service_pb2 as gpb
from givance.billing.v1 import gateway_config_service_pb2_grpc as gpb_grpc
from google.protobuf import empty_pb2

from bench import seed
from bench.load import LoadResult, LoadSpec, run
from bench.stack import EXCHANGE
from chassis import events
from chassis.settings import plain_dsn
from services.billing.providers.stripe_gateway import sign

SECRET = "whsec_" + "BenchBenchBenchBenchBench0123456789"
KEY = "sk_test_" + "BenchBenchBench0123456789"
REQUESTS_PER_RUN = 40_000  # more than a window can send: every request a new event id
USAGE_EVENTS = 5_000


async def gateway_config(billing: str, tenant: seed.Tenant) -> str:
    async with grpc.aio.insecure_channel(billing) as channel:
        stub = gpb_grpc.GatewayConfigServiceStub(channel)
        config = gateway_config_pb2.GatewayConfig(gateway=gateway_config_pb2.GATEWAY_STRIPE, secret_key=KEY,
                                                  webhook_secret=SECRET)
        resp = await stub.CreateGatewayConfig(gpb.CreateGatewayConfigRequest(gateway_config=config),
                                              metadata=tenant.metadata)
    return resp.gateway_config.webhook_path


def requests(target: str, path: str, count: int) -> list[bytes]:
    """Whole HTTP requests, each a signed event with its own id (signed now: within the tolerance)."""
    now = int(time.time())
    out = []
    for _ in range(count):
        body = json.dumps({"id": f"evt_{uuid.uuid4().hex[:24]}", "object": "event", "type": "charge.updated",
                           "created": now, "livemode": False,
                           "data": {"object": {"id": f"ch_{uuid.uuid4().hex[:24]}", "object": "charge",
                                               "amount": 2500, "currency": "usd"}}}).encode()
        head = (f"POST {path} HTTP/1.1\r\nhost: {target}\r\ncontent-type: application/json\r\n"
                f"stripe-signature: {sign(body, SECRET, now)}\r\ncontent-length: {len(body)}\r\n\r\n")
        out.append(head.encode() + body)
    return out


async def measure(webhooks: str, bare: str, path: str, *, concurrency: int, warmup: float, window: float,
                  rounds: int, progress) -> tuple[LoadResult, LoadResult]:
    best: dict[str, LoadResult] = {}
    for round_no in range(1, rounds + 1):
        for name, target in (("bare", bare), ("billing", webhooks)):
            spec = LoadSpec(target=target, method=f"POST {path}", payloads=requests(target, path, REQUESTS_PER_RUN),
                            concurrency=concurrency, warmup=warmup, window=window, protocol="http-raw")
            result = await run(spec)
            progress(f"round {round_no}: webhook bench {name} {result.rate:.0f} events/s p99 {result.p99_ms:.1f} ms"
                     + (f" errors {result.errors} {result.first_error}" if result.errors else ""))
            if name not in best or result.rate > best[name].rate:
                best[name] = result
    return best["billing"], best["bare"]


def report_line(billing: LoadResult, bare: LoadResult) -> str:
    return (f"bench webhook: {billing.rate:.0f} events/s ratio={billing.rate / bare.rate:.2f} bare={bare.rate:.0f} "
            f"p99={billing.p99_ms:.1f}ms errors={sum(billing.errors.values())}")


async def usage_count(rabbitmq_url: str, database_url: str, exchange_name: str, tenant: seed.Tenant,
                      count: int = USAGE_EVENTS, timeout: float = 120.0) -> str:
    """Publishes `count` comms.email.sent events for the tenant; the rate at which billing counted them."""
    org = uuid.UUID(tenant.org_id)
    bodies = [events.envelope("comms.email.sent", empty_pb2.Empty(), org, "bench", "bench").SerializeToString()
              for _ in range(count)]
    db = await asyncpg.connect(plain_dsn(database_url))
    conn = await aio_pika.connect_robust(rabbitmq_url)
    try:
        channel = await conn.channel(publisher_confirms=False)
        exchange = await channel.get_exchange(exchange_name)
        t0 = time.perf_counter()
        for body in bodies:
            await exchange.publish(aio_pika.Message(body, headers={events.TENANT_HEADER: str(org)}),
                                   routing_key="comms.email.sent")
        while True:
            counted = await db.fetchval("SELECT COALESCE(sum(quantity), 0) FROM billing.usage_counters "
                                        "WHERE organization_id = $1 AND metric = 'emails'", org)
            if counted >= count:
                break
            if time.perf_counter() - t0 > timeout:
                raise TimeoutError(f"billing counted {counted} of {count} usage events in {timeout:.0f}s")
            await asyncio.sleep(0.05)
        seconds = time.perf_counter() - t0
    finally:
        await conn.close()
        await db.close()
    return f"bench usage_count: {count / seconds:.0f} events/s events={count} seconds={seconds:.1f}"


def start_bare(procs) -> str:
    from bench.stack import free_ports

    (port,) = free_ports(1)
    procs.start("webhook-bare", "bench.webhook_bare", str(port), SECRET)
    return f"127.0.0.1:{port}"


async def wait_http(address: str, procs, timeout: float = 30.0) -> None:
    from bench.gateway import wait_ready

    await wait_ready(address, procs, timeout)


async def figures(procs, stack, addrs, tenant: seed.Tenant, *, concurrency: int, warmup: float, window: float,
                  rounds: int, progress) -> list[str]:
    bare = start_bare(procs)
    await wait_http(bare, procs)
    await wait_http(addrs.http["billing"], procs)
    path = await gateway_config(addrs.services["billing"], tenant)
    billing, baseline = await measure(addrs.http["billing"], bare, path, concurrency=concurrency, warmup=warmup,
                                      window=window, rounds=rounds, progress=progress)
    lines = [report_line(billing, baseline)]
    lines.append(await usage_count(stack.rabbitmq_url, stack.database_url, EXCHANGE, tenant))
    return lines


def main() -> None:
    from bench.__main__ import CONCURRENCY, ROUNDS, WARMUP_SECONDS, WINDOW_SECONDS, progress, start_servers
    from bench.stack import Processes, recreate, stack_from_env, wait_healthy

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    stack = stack_from_env()
    recreate(stack)
    procs = Processes()
    try:
        addrs = start_servers(procs, stack)

        async def go() -> None:
            for service_address in addrs.services.values():
                await wait_healthy(service_address, procs)
            tenant = await seed.seed(addrs.identity, addrs.crm, 1)
            for line in await figures(procs, stack, addrs, tenant, concurrency=CONCURRENCY, warmup=WARMUP_SECONDS,
                                      window=WINDOW_SECONDS, rounds=ROUNDS, progress=progress):
                print(line, flush=True)
            procs.check_alive()

        uvloop.run(go())
    finally:
        procs.stop_all()


if __name__ == "__main__":
    main()
