"""SuppressionService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.comms.v1 import suppression_pb2, suppression_service_pb2_grpc
from givance.comms.v1 import suppression_service_pb2 as pb

from chassis import context
from chassis.convert import timestamp
from chassis.db import Database
from services.comms.api.convert import REASON_OUT
from services.comms.handlers import preferences
from services.comms.handlers import suppressions as handlers
from services.comms.handlers.deps import Deps


def suppression_to_proto(r: dict) -> suppression_pb2.Suppression:
    return suppression_pb2.Suppression(id=str(r["id"]), organization_id=str(r["organization_id"]),
                                       address=r["address"], reason=REASON_OUT[r["reason"]], note=r["note"],
                                       create_time=timestamp(r["created_at"]))


class SuppressionServicer(suppression_service_pb2_grpc.SuppressionServiceServicer):
    def __init__(self, deps: Deps):
        self.deps = deps
        self.db: Database = deps.db

    async def AddSuppression(self, request: pb.AddSuppressionRequest, ctx) -> pb.AddSuppressionResponse:
        row = await handlers.add_suppression(self.db, context.current().tenant_id, request.suppression.address,
                                             request.suppression.note)
        return pb.AddSuppressionResponse(suppression=suppression_to_proto(row))

    async def ListSuppressions(self, request: pb.ListSuppressionsRequest, ctx) -> pb.ListSuppressionsResponse:
        rows, token = await handlers.list_suppressions(self.db, context.current().tenant_id, request.page_size,
                                                       request.page_token)
        return pb.ListSuppressionsResponse(suppressions=[suppression_to_proto(r) for r in rows],
                                           next_page_token=token)

    async def DeleteSuppression(self, request: pb.DeleteSuppressionRequest, ctx) -> pb.DeleteSuppressionResponse:
        await handlers.delete_suppression(self.db, context.current().tenant_id, request.id)
        return pb.DeleteSuppressionResponse()

    async def ListConsentChanges(self, request: pb.ListConsentChangesRequest, ctx) -> pb.ListConsentChangesResponse:
        rows = await handlers.consent_history(self.db, context.current().tenant_id, request.address)
        return pb.ListConsentChangesResponse(changes=[change_to_proto(r) for r in rows])

    async def GrantConsent(self, request: pb.GrantConsentRequest, ctx) -> pb.GrantConsentResponse:
        ctx = context.current()
        org, who = ctx.tenant_id, ctx.principal.subject if ctx.principal else ""
        sent = await preferences.grant_consent(self.deps, org, request.address, list(request.categories),
                                               request.source.strip(), f"recorded by {who}; ip {ctx.peer}")
        rows = await handlers.consent_history(self.db, org, request.address)
        return pb.GrantConsentResponse(confirmation_sent=sent, changes=[change_to_proto(r) for r in rows])


def change_to_proto(r: dict) -> suppression_pb2.ConsentChange:
    return suppression_pb2.ConsentChange(address=r["address"], category=r["category"], granted=r["granted"],
                                         source=r["source"], change_time=timestamp(r["created_at"]),
                                         pending=r["pending"], detail=r["detail"])
