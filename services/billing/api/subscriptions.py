"""SubscriptionService: the organization's subscription to the platform."""

from __future__ import annotations

from givance.billing.v1 import subscription_pb2, subscription_service_pb2_grpc
from givance.billing.v1 import subscription_service_pb2 as pb

from chassis import context
from chassis.convert import timestamp
from chassis.db import Database
from chassis.errors import InvalidArgument
from chassis.resource import etag
from services.billing.api.invoices import invoice_to_proto
from services.billing.api.plans import CYCLE_IN, CYCLE_OUT, plan_to_proto
from services.billing.domain.clock import Clock
from services.billing.handlers import subscriptions as handlers
from services.billing.providers.platform_payments import PlatformCharger

STATUS_OUT = {"trial": subscription_pb2.SUBSCRIPTION_STATUS_TRIAL,
              "active": subscription_pb2.SUBSCRIPTION_STATUS_ACTIVE,
              "past_due": subscription_pb2.SUBSCRIPTION_STATUS_PAST_DUE,
              "paused": subscription_pb2.SUBSCRIPTION_STATUS_PAUSED,
              "cancelled": subscription_pb2.SUBSCRIPTION_STATUS_CANCELLED,
              "unpaid": subscription_pb2.SUBSCRIPTION_STATUS_UNPAID}


def subscription_to_proto(s: dict, plan: dict) -> subscription_pb2.Subscription:
    return subscription_pb2.Subscription(
        id=str(s["id"]), organization_id=str(s["organization_id"]), plan=plan_to_proto(plan),
        billing_cycle=CYCLE_OUT[s["billing_cycle"]], status=STATUS_OUT[s["status"]],
        trial_end_time=timestamp(s["trial_end"]), current_period_start_time=timestamp(s["current_period_start"]),
        current_period_end_time=timestamp(s["current_period_end"]), cancel_at_period_end=s["cancel_at_period_end"],
        pending_plan_id=str(s["pending_plan_id"] or ""),
        pending_billing_cycle=CYCLE_OUT.get(s["pending_cycle"], 0), payment_attempts=s["payment_attempts"],
        coupon_code=s["coupon_code"] or "", coupon_periods_left=s["coupon_periods_left"] or 0,
        cancel_time=timestamp(s["cancelled_at"]), create_time=timestamp(s["created_at"]),
        update_time=timestamp(s["updated_at"]), etag=etag(s["version"]))


class SubscriptionServicer(subscription_service_pb2_grpc.SubscriptionServiceServicer):
    def __init__(self, db: Database, charger: PlatformCharger, clock: Clock):
        self.db, self.charger, self.clock = db, charger, clock

    async def GetSubscription(self, request: pb.GetSubscriptionRequest, ctx) -> pb.GetSubscriptionResponse:
        sub, plan = await handlers.get_subscription(self.db, context.current().tenant_id)
        return pb.GetSubscriptionResponse(subscription=subscription_to_proto(sub, plan))

    async def ChangePlan(self, request: pb.ChangePlanRequest, ctx) -> pb.ChangePlanResponse:
        if request.billing_cycle and request.billing_cycle not in CYCLE_IN:
            raise InvalidArgument.field("billing_cycle", f"unknown billing cycle {request.billing_cycle}")
        sub, plan, invoice = await handlers.change_plan(
            self.db, context.current().tenant_id, request.plan_id, CYCLE_IN.get(request.billing_cycle),
            request.etag, self.charger, self.clock.now(), end_trial=request.end_trial)
        return pb.ChangePlanResponse(subscription=subscription_to_proto(sub, plan),
                                     invoice=invoice_to_proto(invoice) if invoice else None)

    async def CancelSubscription(self, request: pb.CancelSubscriptionRequest, ctx) -> pb.CancelSubscriptionResponse:
        sub, plan = await handlers.cancel(self.db, context.current().tenant_id, request.immediately, request.etag,
                                          self.clock.now())
        return pb.CancelSubscriptionResponse(subscription=subscription_to_proto(sub, plan))

    async def PauseSubscription(self, request: pb.PauseSubscriptionRequest, ctx) -> pb.PauseSubscriptionResponse:
        sub, plan = await handlers.pause(self.db, context.current().tenant_id, request.etag, self.clock.now())
        return pb.PauseSubscriptionResponse(subscription=subscription_to_proto(sub, plan))

    async def ResumeSubscription(self, request: pb.ResumeSubscriptionRequest, ctx) -> pb.ResumeSubscriptionResponse:
        sub, plan = await handlers.resume(self.db, context.current().tenant_id, request.etag, self.clock.now())
        return pb.ResumeSubscriptionResponse(subscription=subscription_to_proto(sub, plan))

    async def ApplyCoupon(self, request: pb.ApplyCouponRequest, ctx) -> pb.ApplyCouponResponse:
        sub, plan = await handlers.apply_coupon(self.db, context.current().tenant_id, request.code)
        return pb.ApplyCouponResponse(subscription=subscription_to_proto(sub, plan))
