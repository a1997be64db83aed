"""Metrics and logs (issue 10, item 8): each service serves Prometheus' /metrics with its calls
counted by method and code, its queues, outbox and pool; its log lines are JSON objects that
carry the trace, span, tenant and request ids, and no personal data."""

import asyncio
import io
import json
import logging
import re
import urllib.request
import uuid
from pathlib import Path

import grpc
from givance.crm.v1 import donor_service_pb2 as pb
from givance.crm.v1 import donor_service_pb2_grpc
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from chassis import logs, telemetry
from tests.helpers import eventually, fails, new_donor

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "givance.json"


def chassis_counters() -> set[str]:
    """The Prometheus names of the counters the chassis creates."""
    return {n.replace(".", "_") + "_total" for f in (ROOT / "chassis").glob("*.py")
            for n in re.findall(r'create_counter\(\s*"([\w.]+)"', f.read_text())}


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200
        return resp.read().decode()


async def scrape(host) -> str:
    async def port():
        return host.metrics.bound_port

    bound = await eventually(port, what="the metrics endpoint to listen")
    return await asyncio.to_thread(get, f"http://127.0.0.1:{bound}/metrics")


def samples(text: str, name: str, **labels: str) -> list[float]:
    found = []
    for line in text.splitlines():
        m = re.match(rf"{re.escape(name)}\{{(.*)\}} (\S+)$", line)
        if m and all(f'{k}="{v}"' in m.group(1) for k, v in labels.items()):
            found.append(float(m.group(2)))
    return found


def _count(text: str, method: str, code: str) -> float:
    return sum(samples(text, "rpc_server_duration_milliseconds_count", rpc_method=method,
                       rpc_grpc_status_code=code, service="crm"))


async def test_metrics_count_calls_per_method_and_code_and_show_queues_outbox_and_pool(stubs, crm_host, tenant):
    before = await scrape(crm_host)
    donor = (await stubs.donors.CreateDonor(new_donor(), metadata=tenant.md)).donor
    await stubs.donors.GetDonor(pb.GetDonorRequest(id=donor.id), metadata=tenant.md)
    await fails(stubs.donors.GetDonor(pb.GetDonorRequest(id=str(uuid.uuid4())), metadata=tenant.md),
                grpc.StatusCode.NOT_FOUND)
    await crm_host.metrics.sampler.sample()
    after = await scrape(crm_host)
    assert _count(after, "GetDonor", "OK") == _count(before, "GetDonor", "OK") + 1
    assert _count(after, "GetDonor", "NOT_FOUND") == _count(before, "GetDonor", "NOT_FOUND") + 1
    assert _count(after, "CreateDonor", "OK") >= 1
    assert samples(after, "rpc_server_duration_milliseconds_bucket", rpc_method="GetDonor", le="+Inf")
    assert samples(after, "givance_outbox_backlog", service="crm")
    assert samples(after, "givance_db_pool_size", service="crm") and samples(after, "givance_db_pool_in_use",
                                                                              service="crm")
    queues = {q for line in after.splitlines() if line.startswith("givance_consumer_queue_depth{")
              for q in re.findall(r'queue="([^"]+)"', line)}
    assert queues and queues == {q for line in after.splitlines() if line.startswith("givance_consumer_dlq_depth{")
                                 for q in re.findall(r'queue="([^"]+)"', line)}
    # Every metric the Grafana dashboard charts is one the services export.
    dashboard = json.loads(await asyncio.to_thread(DASHBOARD.read_text))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert exprs
    exported = {line.split("{")[0].split(" ")[0] for line in after.splitlines() if line and line[0] != "#"}
    # A counter shows once something counted; the dashboard's must be counters the chassis creates.
    exported |= chassis_counters()
    for expr in exprs:
        for name in re.findall(r"\b(givance_\w+|rpc_server_\w+)", expr):
            assert name in exported, f"the dashboard charts {name}, which nothing exports"


async def test_a_requests_log_lines_are_json_with_trace_span_tenant_and_request_ids(env, identity_host, tenant):
    telemetry.setup("crm-test", exporter=InMemorySpanExporter())
    from services.crm.__main__ import build
    from services.crm.settings import CrmSettings

    host = await build(CrmSettings(port=0, grace_seconds=1, identity_address=f"127.0.0.1:{identity_host.bound_port}"))
    port = await host.start()
    stream = io.StringIO()
    handler = logs.handler(stream)
    access = logging.getLogger("chassis.access")
    level = access.level
    access.addHandler(handler)
    access.setLevel(logging.DEBUG)
    request_id = uuid.uuid4().hex
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", interceptors=telemetry.client_interceptors()) as ch:
            stub = donor_service_pb2_grpc.DonorServiceStub(ch)
            with trace.get_tracer("test").start_as_current_span("client") as root:
                trace_id = f"{root.get_span_context().trace_id:032x}"
                await fails(stub.GetDonor(pb.GetDonorRequest(id=str(uuid.uuid4())),
                                          metadata=(*tenant.md, ("x-request-id", request_id))),
                            grpc.StatusCode.NOT_FOUND)
                logging.getLogger("chassis.access").info("signed up %s with %s", tenant.email,
                                                         f"Bearer {tenant.access_token}")
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
        await host.stop()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]  # every line is one JSON object
    (call,) = [r for r in lines if r.get("rpc_method") == "givance.crm.v1.DonorService/GetDonor"]
    assert call["level"] == "INFO" and call["grpc_code"] == "NOT_FOUND" and call["logger"] == "chassis.access"
    assert call["request_id"] == request_id and call["tenant_id"] == tenant.org_id
    assert call["trace_id"] == trace_id and re.fullmatch(r"[0-9a-f]{16}", call["span_id"])
    # A slip of personal data or a token into a message is masked.
    text = stream.getvalue()
    assert tenant.email not in text and tenant.access_token not in text
    assert "[email]" in lines[-1]["message"] and "[token]" in lines[-1]["message"]
