"""GET /v1/donors/{id} through the HTTP/JSON gateway against gRPC GetDonor straight to crm.

    bench gateway_get_donor: N req/s ratio=R grpc=G p99=P ms grpc_p99=Q ms errors=E

Both are measured by the same load client (bench.load: gRPC on one channel, HTTP/1.1 on
keep-alive connections) with the same concurrency, the same donors and the same token, in
the same run, the two interleaved and each the best of `rounds`. The gateway runs as
`python -m gateway` (one process, like crm) with its rate limits on in Redis, set high enough
that no request is refused: the figure includes the limiter's round trip and the token check.

    python -m bench.gateway      just this figure (starts the stack, seeds, measures, stops)
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time

import uvloop

from bench import seed
from bench.load import LoadResult, LoadSpec, run

PREFIX = "givance:bench:rl"


def gateway_env(stack, port: int, backends: dict[str, str]) -> dict[str, str]:
    return stack.env(GATEWAY_PORT=str(port), GATEWAY_BACKENDS=json.dumps(backends), GATEWAY_METRICS_PORT="0",
                     GATEWAY_RATE_LIMIT_PREFIX=f"{PREFIX}:{time.time_ns()}",
                     **{f"GATEWAY_{k}_{p}": "1000000" for k in ("ADDRESS", "TOKEN", "TENANT")
                        for p in ("RATE", "BURST")})


async def measure(gateway: str, crm: str, tenant: seed.Tenant, *, concurrency: int, warmup: float, window: float,
                  rounds: int, progress) -> tuple[LoadResult, LoadResult]:
    paths = [f"/v1/donors/{d}".encode() for d in tenant.donor_ids]
    targets = {
        "grpc": LoadSpec(target=crm, method=seed.GET_DONOR, payloads=seed.get_donor_requests(tenant),
                         metadata=tenant.metadata, concurrency=concurrency, warmup=warmup, window=window),
        "http": LoadSpec(target=gateway, method="GET /v1/donors/{id}", payloads=paths, metadata=tenant.metadata,
                         concurrency=concurrency, warmup=warmup, window=window, protocol="http"),
    }
    best: dict[str, LoadResult] = {}
    for round_no in range(1, rounds + 1):
        for name, spec in targets.items():
            result = await run(spec)
            progress(f"round {round_no}: gateway bench {name} {result.rate:.0f} calls/s p99 {result.p99_ms:.1f} ms"
                     + (f" errors {result.errors} {result.first_error}" if result.errors else ""))
            if name not in best or result.rate > best[name].rate:
                best[name] = result
    return best["http"], best["grpc"]


async def wait_ready(address: str, procs, timeout: float = 30.0) -> None:
    """Until the gateway's /readyz answers 200."""
    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + timeout
    while True:
        procs.check_alive()
        try:
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(f"GET /readyz HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n\r\n".encode())
            head = await reader.readline()
            writer.close()
            if b" 200 " in head:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"the gateway at {address} not ready after {timeout:.0f}s")
        await asyncio.sleep(0.2)


def report_line(http: LoadResult, grpc: LoadResult) -> str:
    return (f"bench gateway_get_donor: {http.rate:.0f} req/s ratio={http.rate / grpc.rate:.2f} grpc={grpc.rate:.0f} "
            f"p99={http.p99_ms:.1f}ms grpc_p99={grpc.p99_ms:.1f}ms errors={sum(http.errors.values())}")


def main() -> None:
    from bench.__main__ import (
        CONCURRENCY,
        DONORS,
        ROUNDS,
        WARMUP_SECONDS,
        WINDOW_SECONDS,
        progress,
        start_gateway,
        start_servers,
    )
    from bench.stack import Processes, recreate, stack_from_env, wait_healthy

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    stack = stack_from_env()
    recreate(stack)
    procs = Processes()
    try:
        addrs = start_servers(procs, stack)
        address = start_gateway(procs, stack, addrs)

        async def go() -> None:
            for service_address in addrs.services.values():
                await wait_healthy(service_address, procs)
            await wait_ready(address, procs)
            tenant = await seed.seed(addrs.identity, addrs.crm, DONORS)
            http, grpc = await measure(address, addrs.crm, tenant, concurrency=CONCURRENCY,
                                       warmup=WARMUP_SECONDS, window=WINDOW_SECONDS, rounds=ROUNDS, progress=progress)
            print(report_line(http, grpc), flush=True)
            procs.check_alive()

        uvloop.run(go())
    finally:
        procs.stop_all()


if __name__ == "__main__":
    main()
