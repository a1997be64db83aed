"""python -m services.crm: wiring happens in build(), not at import (the tests call build too)."""

from __future__ import annotations

from givance.crm.v1 import (
    donation_service_pb2_grpc,
    donor_list_service_pb2_grpc,
    donor_service_pb2_grpc,
    insight_service_pb2_grpc,
    journey_service_pb2_grpc,
    project_service_pb2_grpc,
    todo_service_pb2_grpc,
)

from chassis import telemetry
from chassis.audit import ReadAudit
from chassis.auth import JwksCache, TokenVerifier, identity_jwks_fetcher
from chassis.db import Database, create_engine
from chassis.revocation import RevocationList
from chassis.server import Registration, ServiceHost, attach_event_machinery
from chassis.settings import plain_dsn
from services.crm.api.donations import DonationServicer
from services.crm.api.donor_lists import DonorListServicer
from services.crm.api.donors import DonorServicer
from services.crm.api.insight import InsightServicer
from services.crm.api.journeys import JourneyServicer
from services.crm.api.projects import ProjectServicer
from services.crm.api.todos import TodoServicer
from services.crm.consumers import SUBSCRIPTIONS
from services.crm.settings import CrmSettings

SCHEMA = "crm"


async def build(s: CrmSettings, *, verifier: TokenVerifier | None = None) -> ServiceHost:
    telemetry.setup("crm", s.otlp_endpoint)
    app_url = s.app_database_url(SCHEMA)
    db = Database(create_engine(app_url, pool_size=s.db_pool_size, application_name="crm"), SCHEMA)
    reads = ReadAudit(db)
    verifier = verifier or TokenVerifier(JwksCache(identity_jwks_fetcher(s.identity_address)))
    revocations = RevocationList()
    verifier.extra_checks.append(revocations.check)
    host = ServiceHost(
        name="crm", host=s.host, port=s.port, verifier=verifier, grace_seconds=s.grace_seconds,
        registrations=[
            Registration("givance.crm.v1.DonorService", donor_service_pb2_grpc.add_DonorServiceServicer_to_server,
                         DonorServicer(db, reads)),
            Registration("givance.crm.v1.DonationService",
                         donation_service_pb2_grpc.add_DonationServiceServicer_to_server, DonationServicer(db, reads)),
            Registration("givance.crm.v1.JourneyService",
                         journey_service_pb2_grpc.add_JourneyServiceServicer_to_server, JourneyServicer(db)),
            Registration("givance.crm.v1.DonorListService",
                         donor_list_service_pb2_grpc.add_DonorListServiceServicer_to_server,
                         DonorListServicer(db, reads)),
            Registration("givance.crm.v1.ProjectService",
                         project_service_pb2_grpc.add_ProjectServiceServicer_to_server, ProjectServicer(db)),
            Registration("givance.crm.v1.TodoService",
                         todo_service_pb2_grpc.add_TodoServiceServicer_to_server, TodoServicer(db)),
            Registration("givance.crm.v1.InsightService",
                         insight_service_pb2_grpc.add_InsightServiceServicer_to_server, InsightServicer(db, reads)),
        ],
    )
    # Batched read audits flush before the relay stops, so their rows still go out.
    host.background.append(reads.run)
    host.workers.append(reads)
    attach_event_machinery(host, db, dsn=plain_dsn(app_url), amqp_url=s.rabbitmq_url, exchange=s.events_exchange,
                           subscriptions=SUBSCRIPTIONS, revocations=revocations)
    return host


async def main() -> None:
    host = await build(CrmSettings())
    await host.serve_until_signalled()


if __name__ == "__main__":
    from chassis.server import run

    run(main)
