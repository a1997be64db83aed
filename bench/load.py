"""The load client, the same code for the echo baseline and for the services.

    python -m bench.load < spec.json      (prints the result as JSON on stdout)

It runs in a fresh process of its own (see `run`), so its CPU is not shared with the
orchestrator. Requests are serialized beforehand and responses are not parsed: every
target costs the client the same, and the difference between targets is the server's.

Two protocols: gRPC (`target` host:port, `method` the full method, `payloads` serialized
requests, one channel) and HTTP/1.1 (`protocol="http"`, `target` host:port, `payloads` the
request paths, `metadata` sent as headers; one keep-alive connection per concurrent caller,
a minimal client of its own so that its cost per request is as small as the gRPC one's).
Every call's latency is kept: `p99_ms` is over the calls completed in the window.

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
    protocol: str = "grpc"  # or "http" (GET of each payload's path), "http-raw" (each payload a whole request)

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
    p99_ms: float = 0.0

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
        self.latencies: list[float] = []

    async def call(self, n: int) -> None:
        t0 = time.perf_counter()
        try:
            await self._call(self._payloads[n % len(self._payloads)], metadata=self._metadata)
        except grpc.aio.AioRpcError as err:
            self.errors[err.code().name] += 1
            self.first_error = self.first_error or f"{err.code().name}: {err.details()}"
        else:
            self.ok += 1
            self.latencies.append(time.perf_counter() - t0)


class _HttpCaller:
    """GET requests over one keep-alive HTTP/1.1 connection per concurrent caller."""

    def __init__(self, spec: LoadSpec):
        host, _, port = spec.target.rpartition(":")
        self._host, self._port = host, int(port)
        headers = "".join(f"{k}: {v}\r\n" for k, v in spec.metadata)
        if spec.protocol == "http-raw":  # payloads are whole requests (a POST with its body)
            self._requests = list(spec.payloads)
        else:
            self._requests = [f"GET {p.decode()} HTTP/1.1\r\nhost: {spec.target}\r\n{headers}\r\n".encode()
                              for p in spec.payloads]
        self._conns: dict[int, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}
        self._concurrency = spec.concurrency
        self.ok = 0
        self.errors: Counter[str] = Counter()
        self.first_error = ""
        self.latencies: list[float] = []

    async def call(self, n: int) -> None:
        slot = n % self._concurrency
        t0 = time.perf_counter()
        try:
            if slot not in self._conns:
                self._conns[slot] = await asyncio.open_connection(self._host, self._port)
            reader, writer = self._conns[slot]
            writer.write(self._requests[n % len(self._requests)])
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            body = await reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError) as err:
            self._conns.pop(slot, None)
            self.errors[type(err).__name__] += 1
            self.first_error = self.first_error or repr(err)
            return
        if 200 <= status < 400:  # a redirect (comms' click) is an answer too
            self.ok += 1
            self.latencies.append(time.perf_counter() - t0)
        else:
            self.errors[f"HTTP {status}"] += 1
            self.first_error = self.first_error or f"HTTP {status}: {body[:200]!r}"


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
    lat0 = len(caller.latencies)
    await asyncio.sleep(spec.window)
    ok1, errors1, t1 = caller.ok, caller.errors.copy(), time.perf_counter()
    window = caller.latencies[lat0:len(caller.latencies)]
    running = False
    await asyncio.gather(*workers)
    return LoadResult(ok=ok1 - ok0, seconds=t1 - t0, errors=dict(errors1 - errors0), first_error=caller.first_error,
                      p99_ms=_p99_ms(window))


def _p99_ms(latencies: list[float]) -> float:
    if not latencies:
        return 0.0
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000


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
    if spec.protocol in ("http", "http-raw"):
        if spec.mode != "closed":  # one connection per caller: one request in flight on each
            raise ValueError("HTTP load runs closed-loop only")
        return await closed_loop(_HttpCaller(spec), spec)
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
