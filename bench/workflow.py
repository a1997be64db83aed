"""1,000 executions of a three-step workflow, each started by an event.

    bench workflow: N executions/s p99_step_ms=M p50_step_ms=P executions=1000 gifts_s=G errors=0

A new organization with 1,000 donors activates a workflow triggered by `crm.donation.recorded`
(create a todo, set a variable, send a message through crm's development messenger); then one
gift per donor is recorded, 32 calls at a time. executions/s is the executions over the time
from the first one's start to the last one's end (crm's own rows); a step's time runs from
the log entry before it (when it became due) to its own: the trigger-to-first-step wait and
each hop through the due-actions table and the worker included. gifts_s is how long recording
the gifts took: when it is most of the span, the figure is the event source's pace, not the
engine's.

    python -m bench.workflow      just this figure (starts the stack, seeds, measures, stops)
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from datetime import datetime

import asyncpg
import grpc
from givance.crm.v1 import workflow_pb2, workflow_service_pb2, workflow_service_pb2_grpc
from google.protobuf import struct_pb2

from bench import seed
from bench.lag import percentile

EXECUTIONS = 1000
CONCURRENCY = 32
TIMEOUT = 300.0
DEFINITION = {
    "triggers": [{"type": "event", "event": "crm.donation.recorded"}],
    "steps": [
        {"id": "thank", "type": "create_todo", "title": "Thank {{donor.name}}", "due_in": "2d"},
        {"id": "mark", "type": "set_field", "field": "vars.thanked", "value": "{{event.amount}}"},
        {"id": "tell", "type": "send_message", "template": "thank-you", "to": "donor",
         "variables": {"name": "{{donor.first_name}}"}},
    ],
}


async def activate(crm_address: str, tenant: seed.Tenant) -> str:
    definition = struct_pb2.Struct()
    definition.update(DEFINITION)
    async with grpc.aio.insecure_channel(crm_address) as channel:
        stub = workflow_service_pb2_grpc.WorkflowServiceStub(channel)
        w = (await stub.CreateWorkflow(workflow_service_pb2.CreateWorkflowRequest(
            workflow=workflow_pb2.Workflow(name="bench", definition=definition)), metadata=tenant.metadata)).workflow
        await stub.ActivateWorkflow(workflow_service_pb2.ActivateWorkflowRequest(id=w.id), metadata=tenant.metadata)
    return w.id


async def record(crm_address: str, tenant: seed.Tenant) -> int:
    """One gift per donor; returns the calls that failed."""
    from givance.crm.v1 import donation_service_pb2_grpc

    requests = seed.record_donation_requests(tenant)
    errors = 0
    async with grpc.aio.insecure_channel(crm_address) as channel:
        stub = donation_service_pb2_grpc.DonationServiceStub(channel)
        call = stub.RecordDonation
        queue = list(requests)

        async def worker() -> None:
            nonlocal errors
            from givance.crm.v1 import donation_service_pb2

            while queue:
                body = queue.pop()
                try:
                    await call(donation_service_pb2.RecordDonationRequest.FromString(body), metadata=tenant.metadata)
                except grpc.aio.AioRpcError:
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return errors


async def measure(crm_address: str, tenant: seed.Tenant, database_url: str, progress) -> str:
    workflow_id = await activate(crm_address, tenant)
    progress(f"workflow: recording {len(tenant.donor_ids)} gifts, each starting a three-step execution")
    t0 = time.monotonic()
    errors = await record(crm_address, tenant)
    gifts_s = time.monotonic() - t0
    progress(f"workflow: gifts recorded in {gifts_s:.1f}s")
    conn = await asyncpg.connect(database_url)
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            done = await conn.fetchval("SELECT count(*) FROM crm.workflow_executions WHERE workflow_id = $1 "
                                       "AND status IN ('completed', 'failed')", workflow_id)
            if done >= len(tenant.donor_ids) - errors or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        rows = await conn.fetch("SELECT status, started_at, ended_at, log FROM crm.workflow_executions "
                                "WHERE workflow_id = $1", workflow_id)
    finally:
        await conn.close()
    completed = [r for r in rows if r["status"] == "completed"]
    if not completed:
        raise RuntimeError("workflow: no execution completed")
    span = (max(r["ended_at"] for r in completed) - min(r["started_at"] for r in completed)).total_seconds()
    steps_ms: list[float] = []
    for r in completed:
        times = [datetime.fromisoformat(e["time"]) for e in json.loads(r["log"])]
        # started, thank, mark, tell, completed: the three steps are entries 1..3
        steps_ms += [(times[i] - times[i - 1]).total_seconds() * 1000 for i in (1, 2, 3)]
    starts = sorted(r["started_at"] for r in completed)
    progress(f"workflow: executions started over {(starts[-1] - starts[0]).total_seconds():.1f}s, all done "
             f"{(max(r['ended_at'] for r in completed) - starts[-1]).total_seconds():.1f}s after the last start")
    rate = len(completed) / span if span > 0 else float("inf")
    return (f"bench workflow: {rate:.0f} executions/s p99_step_ms={percentile(steps_ms, 99):.1f} "
            f"p50_step_ms={percentile(steps_ms, 50):.1f} executions={len(completed)} gifts_s={gifts_s:.1f} "
            f"errors={errors + len(rows) - len(completed)}")


def main() -> None:
    from bench.__main__ import progress, start_servers
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
            progress(f"workflow: seeding one organization and {EXECUTIONS} donors")
            tenant = await seed.seed(addrs.identity, addrs.crm, EXECUTIONS)
            print(await measure(addrs.crm, tenant, stack.database_url, progress), flush=True)
            procs.check_alive()

        import uvloop

        uvloop.run(go())
    finally:
        procs.stop_all()


if __name__ == "__main__":
    main()
