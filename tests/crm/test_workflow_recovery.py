"""Workflow executions that go wrong, on the real servers: a failing step (a webhook answering
500, signed with HMAC) retries with back-off, then fails with its error recorded, and a user
retries it from that step; a waiting execution is cancelled; a schedule runs once per period.
"""

import hashlib
import hmac
import json
import threading
import uuid
from datetime import UTC, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import pytest
from givance.crm.v1 import workflow_service_pb2 as pb
from google.protobuf import json_format

from tests.crm.workflow_support import (
    ST,
    ahead,
    completed,
    custom,
    get_execution,
    list_executions,
    list_todos,
    make_donor,
    make_worker,
    pb_get,
    routing_keys,
    struct,
    wf,
)
from tests.helpers import eventually, fails

__all__ = ["wf"]  # the fixture


class _Hook(BaseHTTPRequestHandler):
    status = 500
    seen: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        type(self).seen.append((dict(self.headers), body))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def hook_server():
    class Hook(_Hook):
        seen = []

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, Hook
    server.shutdown()
    server.server_close()


async def test_failing_step_retries_fails_and_is_retried(stubs, wf, tenant, crm_db, admin_db, hook_server):
    server, hook = hook_server
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    w = await custom(wf, tenant, [
        {"id": "settle", "type": "wait", "duration": "1d"},
        {"id": "notify", "type": "webhook", "url": url, "body": {"hello": "{{input.who}}"}},
        {"id": "after", "type": "set_field", "field": "vars.done", "value": "yes"},
    ])
    ex = (await wf.StartWorkflowExecution(pb.StartWorkflowExecutionRequest(
        workflow_id=w.id, input=struct({"who": "world"}), request_id="start-1"), metadata=tenant.md)).execution
    again = (await wf.StartWorkflowExecution(pb.StartWorkflowExecutionRequest(
        workflow_id=w.id, input=struct({"who": "world"}), request_id="start-1"), metadata=tenant.md)).execution
    assert again.id == ex.id

    async def waiting():  # the host's worker (system clock) ran the wait: it ends in a day
        e = await get_execution(wf, tenant, ex.id)
        return e.status == ST.WORKFLOW_EXECUTION_STATUS_WAITING

    await eventually(waiting, what="the execution to wait")
    clock = ahead(2)
    worker = make_worker(crm_db, clock)
    for attempt in range(1, 6):
        await worker.run_until_idle()
        e = await get_execution(wf, tenant, ex.id)
        assert e.attempts == attempt and e.error == "the webhook answered HTTP 500", (attempt, e)
        if attempt < 5:
            assert e.status == ST.WORKFLOW_EXECUTION_STATUS_RUNNING
            wait = e.next_run_time.ToDatetime(tzinfo=UTC) - clock.now()
            assert wait == timedelta(seconds=10 * 2 ** (attempt - 1))  # back-off doubles
            await worker.run_until_idle()  # not before its time
            assert (await get_execution(wf, tenant, ex.id)).attempts == attempt
            clock.advance(seconds=wait.total_seconds())
    assert e.status == ST.WORKFLOW_EXECUTION_STATUS_FAILED and e.current_step == "notify"
    assert e.log[-1].outcome == "failed"
    assert "crm.workflow.execution_failed" in await routing_keys(admin_db, ex.id)
    # every try was signed, with the same idempotency key
    headers, body = hook.seen[0]
    assert json.loads(body) == {"workflow_id": w.id, "execution_id": ex.id, "step_id": "notify",
                                "data": {"hello": "world"}}
    expected = hmac.new(w.webhook_secret.encode(), headers["X-Givance-Timestamp"].encode() + b"." + body,
                        hashlib.sha256).hexdigest()
    assert headers["X-Givance-Signature"] == f"sha256={expected}"
    assert len(hook.seen) == 5 and len({h["Idempotency-Key"] for h, _ in hook.seen}) == 1
    await fails(wf.CancelWorkflowExecution(pb.CancelWorkflowExecutionRequest(id=str(uuid.uuid4())),
                                           metadata=tenant.md), grpc.StatusCode.NOT_FOUND)
    # the receiver is fixed; a user retries from the failed step
    hook.status = 200
    retried = (await wf.RetryWorkflowExecution(pb.RetryWorkflowExecutionRequest(id=ex.id),
                                               metadata=tenant.md)).execution
    assert retried.status == ST.WORKFLOW_EXECUTION_STATUS_RUNNING and retried.attempts == 0
    await fails(wf.RetryWorkflowExecution(pb.RetryWorkflowExecutionRequest(id=ex.id), metadata=tenant.md),
                grpc.StatusCode.FAILED_PRECONDITION)

    async def finished():
        await worker.run_until_idle()
        return await completed(wf, tenant, ex.id)

    done = await eventually(finished, what="the retried execution to complete")
    assert json_format.MessageToDict(done.context)["vars"]["done"] == "yes"
    assert len(hook.seen) == 6


async def test_cancel_a_waiting_execution(stubs, wf, tenant, crm_db, admin_db):
    w = await custom(wf, tenant, [{"id": "nap", "type": "wait", "duration": "3d"},
                                   {"id": "todo", "type": "create_todo", "title": "never"}])
    ex = (await wf.StartWorkflowExecution(pb.StartWorkflowExecutionRequest(workflow_id=w.id),
                                          metadata=tenant.md)).execution

    async def waiting():
        e = await get_execution(wf, tenant, ex.id)
        return e.status == ST.WORKFLOW_EXECUTION_STATUS_WAITING

    await eventually(waiting, what="the execution to wait")
    cancelled = (await wf.CancelWorkflowExecution(pb.CancelWorkflowExecutionRequest(id=ex.id),
                                                  metadata=tenant.md)).execution
    assert cancelled.status == ST.WORKFLOW_EXECUTION_STATUS_CANCELLED
    assert await admin_db.fetchval("SELECT count(*) FROM crm.workflow_due WHERE execution_id = $1",
                                   uuid.UUID(ex.id)) == 0
    await make_worker(crm_db, ahead(4)).run_until_idle()
    assert not [t for t in await list_todos(stubs, tenant) if t.title == "never"]
    # a paused workflow cannot be started by hand
    await wf.PauseWorkflow(pb.PauseWorkflowRequest(id=w.id), metadata=tenant.md)
    await fails(wf.StartWorkflowExecution(pb.StartWorkflowExecutionRequest(workflow_id=w.id), metadata=tenant.md),
                grpc.StatusCode.FAILED_PRECONDITION)


async def test_a_schedule_reruns_each_period_once_and_sets_fields(stubs, wf, tenant, crm_db, admin_db):
    """A schedule with no audience starts one execution per period; set_field writes a donor's
    custom field and the execution's variables."""
    donor = await make_donor(stubs, tenant)
    w = await custom(wf, tenant, [
        {"id": "tag", "type": "set_field", "field": "vars.seen", "value": "{{execution.start_time}}"},
    ], triggers=[{"type": "schedule", "every": "1d"}])
    clock = ahead(0.5)
    worker = make_worker(crm_db, clock)

    async def runs(n):
        await worker.run_until_idle()
        exs = await list_executions(wf, tenant, workflow_id=w.id)
        return exs if len(exs) == n and all(e.status == ST.WORKFLOW_EXECUTION_STATUS_COMPLETED for e in exs) else None

    await eventually(lambda: runs(1), what="the first scheduled run")
    await worker.run_until_idle()
    assert len(await list_executions(wf, tenant, workflow_id=w.id)) == 1  # half a day on: not yet
    clock.advance(days=1)
    exs = await eventually(lambda: runs(2), what="the second scheduled run")
    assert all(json_format.MessageToDict(e.context)["vars"]["seen"] for e in exs)
    # a donor's custom field, from a manual start about them
    m = await custom(wf, tenant, [{"id": "mark", "type": "set_field", "field": "donor.custom_fields.thanked",
                                    "value": "yes"}])
    ex = (await wf.StartWorkflowExecution(pb.StartWorkflowExecutionRequest(workflow_id=m.id, donor_id=donor.id),
                                          metadata=tenant.md)).execution
    await eventually(lambda: completed(wf, tenant, ex.id), what="the field set")
    got = (await stubs.donors.GetDonor(pb_get(donor.id), metadata=tenant.md)).donor
    assert json_format.MessageToDict(got.custom_fields) == {"thanked": "yes"}
    await fails(wf.StartWorkflowExecution(pb.StartWorkflowExecutionRequest(workflow_id=m.id,
                                                                           donor_id=str(uuid.uuid4())),
                                          metadata=tenant.md), grpc.StatusCode.NOT_FOUND)
