"""UsageService: usage per period and the plan's entitlements."""

from __future__ import annotations

from datetime import UTC, datetime

from givance.billing.v1 import plan_pb2, usage_service_pb2_grpc
from givance.billing.v1 import usage_service_pb2 as pb

from chassis import context
from chassis.convert import date as date_pb
from chassis.convert import date_field
from chassis.db import Database
from chassis.errors import Violations
from services.billing.domain.plans import ENTITLEMENT_KEYS
from services.billing.domain.usage import METRICS
from services.billing.handlers import usage as handlers


class UsageServicer(usage_service_pb2_grpc.UsageServiceServicer):
    def __init__(self, db: Database):
        self.db = db

    async def GetUsage(self, request: pb.GetUsageRequest, ctx) -> pb.GetUsageResponse:
        v = Violations()
        day = date_field(request, "period", v) if request.HasField("period") else None
        v.raise_if_any()
        period, counts, limits = await handlers.get_usage(self.db, context.current().tenant_id,
                                                          day or datetime.now(UTC).date())
        return pb.GetUsageResponse(period_start=date_pb(period), counters=[
            pb.UsageCounter(metric=m, quantity=counts.get(m, 0), limit=limits.get(m, 0)) for m in METRICS])

    async def GetEntitlements(self, request: pb.GetEntitlementsRequest, ctx) -> pb.GetEntitlementsResponse:
        ent, code = await handlers.get_entitlements(self.db, context.current().tenant_id)
        return pb.GetEntitlementsResponse(entitlements=plan_pb2.Entitlements(**{k: ent[k] for k in ENTITLEMENT_KEYS}),
                                          plan_code=code)
