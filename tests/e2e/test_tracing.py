"""One trace follows a request through gRPC, SQL, the outbox and the bus to a consumer."""

import json
import uuid

import grpc
from givance.crm.v1 import donation_service_pb2_grpc, donor_service_pb2_grpc
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from chassis import telemetry
from chassis.consumer import Consumer
from chassis.db import Database, create_engine
from chassis.settings import ServiceSettings
from tests.helpers import eventually, gift, new_donor


async def test_trace_context_travels_from_rpc_through_outbox_to_consumer(env, identity_host, tenant, admin_db):
    exporter = InMemorySpanExporter()
    assert telemetry.setup("crm-test", exporter=exporter)
    from services.crm.__main__ import build
    from services.crm.settings import CrmSettings

    host = await build(CrmSettings(port=0, grace_seconds=1, identity_address=f"127.0.0.1:{identity_host.bound_port}"))
    port = await host.start()
    seen: list[str] = []
    queue = f"test.tracing.{uuid.uuid4().hex[:8]}"
    db = Database(create_engine(ServiceSettings().app_database_url("crm")), "crm")

    async def handler(uow, event):
        seen.append(trace.get_current_span().get_span_context().trace_id)

    consumer = Consumer(db, env["rabbitmq_url"], "givance.events", queue, ["crm.donation.recorded"], handler)
    await consumer.start()
    tracer = trace.get_tracer("test")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}",
                                             interceptors=telemetry.client_interceptors()) as ch:
            with tracer.start_as_current_span("client") as root:
                trace_id = root.get_span_context().trace_id
                donor = (await donor_service_pb2_grpc.DonorServiceStub(ch).CreateDonor(
                    new_donor(), metadata=tenant.md)).donor
                await donation_service_pb2_grpc.DonationServiceStub(ch).RecordDonation(
                    gift(donor.id), metadata=tenant.md)
        headers = json.loads(await admin_db.fetchval(
            "SELECT headers FROM crm.outbox WHERE aggregate_id = $1", donor.id))
        assert f"{trace_id:032x}" in headers["traceparent"]
        await eventually(lambda: seen, what="the consumer to handle the donation event")
        assert seen == [trace_id]
        spans = exporter.get_finished_spans()
        assert any(s.kind == trace.SpanKind.SERVER and s.context.trace_id == trace_id for s in spans)
        assert any("INSERT" in (s.name or "") or s.attributes.get("db.system") == "postgresql"
                   for s in spans if s.context.trace_id == trace_id)

        # background work: a statement outside any span starts no trace; inside a named span it is a child
        async with db.unit_of_work(None) as uow:
            await uow.conn.execute("SELECT 1")
        with tracer.start_as_current_span("background.job") as job:
            async with db.unit_of_work(None) as uow:
                await uow.conn.execute("SELECT 2")
        spans = exporter.get_finished_spans()
        assert [s.name for s in spans if s.parent is None and s.attributes.get("db.system")] == []
        assert any(s.parent is not None and s.parent.span_id == job.get_span_context().span_id
                   and s.attributes.get("db.system") for s in spans)
    finally:
        await consumer.stop()
        await host.stop()
        await db.dispose()
