"""The load client, the same code for the echo baseline and for the services.

    python -m bench.load < spec.json      (prints the result as JSON on stdout)

It runs in a fresh process of its own (see `run`), so its CPU is not shared with the
orchestrator. Requests are serialized beforehand and responses are not parsed: every
target costs the client the same, and the difference between targets is the server's.

Two modes, one channel each:
- closed: `concurrency` calls in flight at all times; after `warmup` seconds it counts the
  calls that complete (OK) during `window` seconds.
- paced: open loop; starts `rate` calls per second for `duration` seconds on schedule,
  whether or not earlier ones finished, then waits for all of them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field

import grpc
import uvloop


@dataclass
class LoadSpec:
    target: str
    method: str
    payloads: list[bytes]
    metadata: list[tuple[str, str]] = field(default_factory=list)
    mode: str = "closed"
    concurrency: int = 32
    warmup: float = 1.0
    window: float = 5.0
    rate: float = 0.0
    duration: float = 0.0

    def to_json(self) -> str:
        data = asdict(self)
        data["payloads"] = [base64.b64encode(p).decode() for p in self.payloads]
        return json.dumps(data)

    @classmethod
    def from_json(cls, raw: str) -> LoadSpec:
        data = json.loads(raw)
        data["payloads"] = [base64.b64decode(p) for p in data["payloads"]]
        data["metadata"] = [tuple(kv) for kv in data["metadata"]]
        return cls(**data)


@dataclass
class LoadResult:
    ok: int  # calls that completed OK (in the window, for closed mode)
    seconds: float
    errors: dict[str, int]
    first_error: str = ""

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


class _Caller:
    """One multicallable on one channel; counts outcomes."""

    def __init__(self, channel: grpc.aio.Channel, spec: LoadSpec):
        self._call = channel.unary_unary(spec.method)  # no serializers: bytes in, bytes out
        self._payloads = spec.payloads
        self._metadata = tuple(spec.metadata)
        self.ok = 0
        self.errors: Counter[str] = Counter()
        self.first_error = ""

    async def call(self, n: int) -> None:
        try:
            await self._call(self._payloads[n % len(self._payloads)], metadata=self._metadata)
        except grpc.aio.AioRpcError as err:
            self.errors[err.code().name] += 1
            self.first_error = self.first_error or f"{err.code().name}: {err.details()}"
        else:
            self.ok += 1


async def closed_loop(caller: _Caller, spec: LoadSpec) -> LoadResult:
    running = True

    async def worker(first: int) -> None:
        n = first
        while running:
            await caller.call(n)
            n += spec.concurrency

    workers = [asyncio.create_task(worker(i)) for i in range(spec.concurrency)]
    await asyncio.sleep(spec.warmup)
    ok0, errors0, t0 = caller.ok, caller.errors.copy(), time.perf_counter()
    await asyncio.sleep(spec.window)
    ok1, errors1, t1 = caller.ok, caller.errors.copy(), time.perf_counter()
    running = False
    await asyncio.gather(*workers)
    return LoadResult(ok=ok1 - ok0, seconds=t1 - t0, errors=dict(errors1 - errors0), first_error=caller.first_error)


async def paced(caller: _Caller, spec: LoadSpec) -> LoadResult:
    total = int(spec.rate * spec.duration)
    interval = 1.0 / spec.rate
    calls: list[asyncio.Task] = []
    t0 = time.perf_counter()
    while len(calls) < total:
        due = min(total, int((time.perf_counter() - t0) / interval) + 1)
        while len(calls) < due:
            calls.append(asyncio.create_task(caller.call(len(calls))))
        await asyncio.sleep(max(0.0, t0 + len(calls) * interval - time.perf_counter()))
    await asyncio.gather(*calls)
    return LoadResult(ok=caller.ok, seconds=time.perf_counter() - t0, errors=dict(caller.errors),
                      first_error=caller.first_error)


async def drive(spec: LoadSpec) -> LoadResult:
    async with grpc.aio.insecure_channel(spec.target) as channel:
        await asyncio.wait_for(channel.channel_ready(), timeout=10)
        caller = _Caller(channel, spec)
        if spec.mode == "paced":
            return await paced(caller, spec)
        return await closed_loop(caller, spec)


async def run(spec: LoadSpec) -> LoadResult:
    """Run the load client in a fresh process and return what it measured."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.load",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )
    try:
        out, _ = await proc.communicate(spec.to_json().encode())
    except BaseException:  # cancelled or interrupted: the client must not outlive its caller
        proc.kill()
        raise
    if proc.returncode != 0:
        raise RuntimeError(f"load client for {spec.method} exited with {proc.returncode}")
    return LoadResult(**json.loads(out))


def main() -> None:
    spec = LoadSpec.from_json(sys.stdin.read())
    result = uvloop.run(drive(spec))
    print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
