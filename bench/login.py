"""Logins per second through the whole stack, against the raw argon2id verifications per second.

    bench login: N logins/s ratio=R baseline=B threads=T errors=0

A few dozen users are signed up through identity beforehand; the load client (closed loop)
then calls IdentityService.Login, spread over them, always with the correct password (a
wrong one would count against identity's per-account and per-address throttle).

`baseline` is what the hardware allows: `PasswordHasher.verify` with identity's own
parameters (services.identity.__main__.password_hasher), in a pool of `threads` threads,
one per core. identity verifies in asyncio.to_thread (a default executor of cores + 4
threads) and argon2-cffi releases the GIL, so both sides can use every core; more threads
than cores add nothing to a CPU-bound hash (on a 2-core machine, 6 threads verified a few
per cent fewer per second than 2), so one thread per core is the higher bar. The ratio
says how much of the hashing capacity the rest of a login leaves (gRPC, the lookups, the
throttle, the refresh token, the audit entry and its trip through the outbox to identity's
own audit-trail consumer, signing the access token). Baseline and logins alternate, ROUNDS
times each, and each one's best run counts (noise on a shared machine only ever lowers a rate).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import grpc
from givance.identity.v1 import identity_service_pb2, identity_service_pb2_grpc

from bench.load import LoadResult, LoadSpec, run
from services.identity.__main__ import password_hasher
from services.identity.settings import IdentitySettings

LOGIN = "/givance.identity.v1.IdentityService/Login"
PASSWORD = "correct horse battery staple"
USERS = 32
CONCURRENCY = 32
SIGN_UP_CONCURRENCY = 8
BASELINE_WARMUP = 0.5
BASELINE_WINDOW = 2.5


@dataclass
class LoginFigures:
    logins: LoadResult  # the best round
    baseline: float  # verifications per second, the best round
    threads: int


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


async def sign_up_users(identity_address: str, count: int) -> list[str]:
    """`count` users (each the owner of a new organization); returns their emails."""
    run_id = uuid.uuid4().hex[:8]
    emails = [f"login-{run_id}-{n}@example.org" for n in range(count)]
    gate = asyncio.Semaphore(SIGN_UP_CONCURRENCY)
    async with grpc.aio.insecure_channel(identity_address) as channel:
        stub = identity_service_pb2_grpc.IdentityServiceStub(channel)

        async def one(n: int) -> None:
            async with gate:
                await stub.SignUp(identity_service_pb2.SignUpRequest(
                    email=emails[n], password=PASSWORD, first_name="Login", last_name=f"Bench {n}",
                    organization_name=f"Login Fund {n}"))

        await asyncio.gather(*(one(n) for n in range(count)))
    return emails


def login_requests(emails: list[str]) -> list[bytes]:
    return [identity_service_pb2.LoginRequest(email=e, password=PASSWORD).SerializeToString() for e in emails]


def verifications_per_second(threads: int, warmup: float = BASELINE_WARMUP, window: float = BASELINE_WINDOW) -> float:
    """PasswordHasher.verify with identity's parameters, `threads` at a time, flat out;
    counts the verifications that end within `window` seconds after `warmup`."""
    hasher = password_hasher(IdentitySettings())
    stored = hasher.hash(PASSWORD)
    t0 = time.perf_counter() + warmup
    t1 = t0 + window
    counts = [0] * threads
    ready = threading.Barrier(threads)

    def worker(i: int) -> None:
        ready.wait()
        while time.perf_counter() < t1:
            hasher.verify(stored, PASSWORD)
            if t0 <= time.perf_counter() <= t1:
                counts[i] += 1

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, range(threads)))
    return sum(counts) / window


async def measure(identity_address: str, rounds: int, warmup: float, window: float,
                  settle: Callable[[], Awaitable[object]], progress: Callable[[str], None]) -> LoginFigures:
    """Sign the users up, then alternate the argon2 baseline and the login load, `rounds`
    times; `settle` (awaited) runs before each round: the earlier work (outboxes, consumers)
    must be done, or it would take CPU from both."""
    emails = await sign_up_users(identity_address, USERS)
    requests = login_requests(emails)
    threads = cores()
    best_rate = 0.0
    best: LoadResult | None = None
    for round_no in range(1, rounds + 1):
        await settle()
        rate = await asyncio.to_thread(verifications_per_second, threads)
        result = await run(LoadSpec(target=identity_address, method=LOGIN, payloads=requests,
                                    concurrency=CONCURRENCY, warmup=warmup, window=window))
        if result.errors:
            progress(f"login: errors {result.errors}, first: {result.first_error}")
        progress(f"round {round_no}: argon2id {rate:.1f} verifications/s ({threads} threads), "
                 f"login {result.rate:.1f} logins/s")
        best_rate = max(best_rate, rate)
        if best is None or result.rate > best.rate:
            best = result
    assert best is not None
    return LoginFigures(logins=best, baseline=best_rate, threads=threads)
