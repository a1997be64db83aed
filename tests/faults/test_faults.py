"""The event promises under real failures (issue 9, item 14).

identity and crm run as processes on the suite's own database and vhost; a stream of donations
is written while a fault strikes; afterwards every event committed during the stream must have
been handled exactly once by every consumer subscribed to it, and no DLQ may hold anything.
Each fault prints `fault NAME: written=… delivered=… duplicates_suppressed=… lost=0`.

`make test` runs the quick profile (600 writes, 4 s outages); `make faults` the full one
(4,000 writes, 20 s outages). The PostgreSQL restart and the memory alarm act on the machine's
shared servers, so they run last (this package is ordered after every other test).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from collections import Counter

import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from chassis import failpoints
from tests.faults.stack import (
    OUTAGE_SECONDS,
    WRITES,
    Stack,
    Workload,
    check_invariant,
    create_stack,
    outbox_marks,
    suppressed_in_logs,
)
from tests.helpers import eventually


@pytest.fixture(scope="module")
async def stack(env):
    name = f"{os.environ.get('GIVANCE_TEST_DATABASE', 'givance_test')}_faults"
    from chassis.settings import ServiceSettings

    s = await create_stack(ServiceSettings().admin_database_url(), env["rabbitmq_url"], name)
    for svc in ("identity", "crm"):
        s.start(svc)
        await s.healthy(svc)
    yield s
    await s.stop_all()
    await s.broker.close()


@pytest.fixture
async def workload(stack: Stack) -> Workload:
    w = Workload(stack)
    await w.setup()
    return w


async def _during(workload: Workload, fault, after: int | None = None):
    """Run the stream; once `after` writes went through, strike `fault`; return the stream's result."""
    stream = asyncio.create_task(workload.run(WRITES))
    await eventually(lambda: workload.writes.ok >= (after if after is not None else WRITES // 3) or stream.done(),
                     timeout=120, what="the stream to get going")
    await fault()
    return await stream


async def _dies_then_restarts(stack: Stack, name: str) -> None:
    """An armed service SIGKILLs itself at its failpoint; it is started again, unarmed."""
    await eventually(lambda: not stack.alive(name), timeout=60, what=f"{name} to die at the failpoint")
    assert stack.procs[name].returncode == -signal.SIGKILL
    stack.start(name)
    await stack.healthy(name)


async def _report(stack: Stack, name: str, since, suppressed):
    return await check_invariant(stack, name, since, suppressed)


async def test_rabbitmq_connection_cut_and_restored(stack, workload):
    since, suppressed = await outbox_marks(stack.database_url), suppressed_in_logs()

    async def cut() -> None:
        stack.broker.cut()
        await asyncio.sleep(OUTAGE_SECONDS)  # the length of the outage, not a wait for a result
        stack.broker.restore()

    writes = await _during(workload, cut)
    assert writes.ok == WRITES, writes.failed  # writes commit while the broker is away
    await _report(stack, "rabbitmq-cut", since, suppressed)


async def test_relay_killed_after_a_confirm_before_marking_sent(stack, workload):
    since, suppressed = await outbox_marks(stack.database_url), suppressed_in_logs()
    await stack.restart("crm", failpoints=failpoints.RELAY_AFTER_CONFIRM)
    await _during(workload, lambda: _dies_then_restarts(stack, "crm"), after=0)
    report = await _report(stack, "relay-sigkill", since, suppressed)
    assert report.written > 0


async def test_consumer_killed_after_commit_before_ack(stack, workload):
    since, suppressed = await outbox_marks(stack.database_url), suppressed_in_logs()
    await stack.restart("identity", failpoints=failpoints.CONSUMER_AFTER_COMMIT)
    await _during(workload, lambda: _dies_then_restarts(stack, "identity"), after=0)
    report = await _report(stack, "consumer-sigkill", since, suppressed)
    # The message committed but never acked came again, and its inbox row turned it away.
    assert report.duplicates >= 1


async def test_sigterm_under_load_drains_before_refusing(stack, workload):
    since, suppressed = await outbox_marks(stack.database_url), suppressed_in_logs()
    statuses: list[int] = []

    async def watch() -> None:
        async with grpc.aio.insecure_channel(stack.address("crm")) as ch:
            try:
                async for resp in health_pb2_grpc.HealthStub(ch).Watch(health_pb2.HealthCheckRequest()):
                    statuses.append(resp.status)
            except grpc.aio.AioRpcError:
                pass

    watcher = asyncio.create_task(watch())
    await eventually(lambda: statuses, what="the health watch to start")

    signalled: list[float] = []

    async def terminate() -> None:
        signalled.append(time.monotonic())
        stack.procs["crm"].send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(stack.procs["crm"].wait, 60) == 0
        stack.start("crm")
        await stack.healthy("crm")

    writes = await _during(workload, terminate)
    await watcher
    assert health_pb2.HealthCheckResponse.NOT_SERVING in statuses, statuses  # told before it went
    # Every call begun before the signal completed: the server drained before it refused.
    before = [outcome for started, outcome in writes.calls if started < signalled[0]]
    assert before and set(before) == {"OK"}, Counter(before)
    # The rest were refused (the server was stopping or down) without an unknown outcome: the
    # organization holds exactly the gifts the clients were told of.
    db = await asyncpg.connect(stack.database_url)
    try:
        org = uuid.UUID(dict(workload.md)["x-tenant-id"])
        recorded = await db.fetchval("SELECT count(*) FROM crm.donations WHERE organization_id = $1", org)
    finally:
        await db.close()
    assert recorded == writes.ok, writes.failed
    await _report(stack, "sigterm", since, suppressed)


async def test_postgres_restarted_mid_stream(stack, workload):
    since, suppressed = await outbox_marks(stack.database_url), suppressed_in_logs()

    async def restart() -> None:
        version = os.listdir("/etc/postgresql")[0]
        await asyncio.to_thread(subprocess.run, ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main",
                                                 "restart", "-m", "immediate"], check=True, capture_output=True)

    writes = await _during(workload, restart)
    assert writes.ok > WRITES // 3
    await _report(stack, "postgres-restart", since, suppressed)


def _rabbitmqctl(*args: str) -> str:
    return subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True).stdout


async def test_broker_memory_alarm_blocks_publishing_not_writes(stack, workload):
    since, suppressed = await outbox_marks(stack.database_url), suppressed_in_logs()
    db = await asyncpg.connect(stack.database_url)
    # The alarm is raised first and the whole stream written under it (raised mid-stream, a
    # short stream could end before the broker blocked anyone).
    await asyncio.to_thread(_rabbitmqctl, "set_vm_memory_high_watermark", "absolute", "1")
    try:
        writes = await workload.run(WRITES)
        # every write committed while the broker refused publishes; their events wait
        assert writes.ok == WRITES, writes.failed
        unsent = await eventually(lambda: db.fetchval(
            "SELECT count(*) FROM crm.outbox WHERE published_at IS NULL AND id > $1", since["crm"]),
            timeout=60, what="events to wait in the outbox while publishing is blocked")
        assert unsent > 0
    finally:
        await asyncio.to_thread(_rabbitmqctl, "set_vm_memory_high_watermark", "0.4")
        await db.close()
    await _report(stack, "memory-alarm", since, suppressed)
