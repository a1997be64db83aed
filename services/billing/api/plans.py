"""PlanService: the catalog (reads for every organization, writes for platform operators)."""

from __future__ import annotations

from decimal import Decimal

from givance.billing.v1 import plan_pb2, plan_service_pb2_grpc
from givance.billing.v1 import plan_service_pb2 as pb

from chassis import context
from chassis.convert import from_money, money, timestamp
from chassis.db import Database
from services.billing.domain.plans import ENTITLEMENT_KEYS, PlanFields
from services.billing.handlers import plans as handlers

CYCLE_IN = {plan_pb2.BILLING_CYCLE_MONTHLY: "monthly", plan_pb2.BILLING_CYCLE_YEARLY: "yearly"}
CYCLE_OUT = {v: k for k, v in CYCLE_IN.items()}
DURATION_IN = {pb.COUPON_DURATION_ONCE: "once", pb.COUPON_DURATION_REPEATING: "repeating",
               pb.COUPON_DURATION_FOREVER: "forever"}
DURATION_OUT = {v: k for k, v in DURATION_IN.items()}


def plan_to_proto(p: dict) -> plan_pb2.Plan:
    prices = [plan_pb2.Price(billing_cycle=CYCLE_OUT[c], amount=money(p[f"{c}_price"], p["currency"]))
              for c in ("monthly", "yearly") if p[f"{c}_price"] is not None]
    ent = plan_pb2.Entitlements(**{k: int(p["entitlements"].get(k, 0)) for k in ENTITLEMENT_KEYS})
    rate = p["tax_rate"]
    return plan_pb2.Plan(id=str(p["id"]), code=p["code"], version=p["version"], name=p["name"],
                         currency_code=p["currency"], prices=prices, trial_days=p["trial_days"],
                         tax_rate=f"{rate.normalize():f}" if rate else "", entitlements=ent,
                         current=bool(p.get("current")), create_time=timestamp(p["created_at"]),
                         usage_prices=[plan_pb2.UsagePrice(metric=m, included=int(u["included"]),
                                                           package_size=int(u["package"]),
                                                           package_price=money(Decimal(u["price"]), p["currency"]))
                                       for m, u in sorted((p.get("usage_prices") or {}).items())])


def plan_from_proto(p: plan_pb2.Plan) -> PlanFields:
    f = PlanFields(code=p.code, name=p.name, currency=p.currency_code, trial_days=p.trial_days, tax_rate=p.tax_rate,
                   entitlements={k: getattr(p.entitlements, k) for k in ENTITLEMENT_KEYS})
    for i, price in enumerate(p.prices):
        cycle = CYCLE_IN.get(price.billing_cycle)
        if cycle is None:
            f.problems["prices"] = (f"plan.prices[{i}].billing_cycle", "must be MONTHLY or YEARLY")
            continue
        if cycle in f.prices:
            f.problems["prices"] = (f"plan.prices[{i}].billing_cycle", f"{cycle} is priced twice")
        if price.amount.currency_code and price.amount.currency_code != p.currency_code:
            f.problems["prices"] = (f"plan.prices[{i}].amount.currency_code", "must be the plan's currency")
        try:
            f.prices[cycle] = from_money(price.amount)
        except ValueError as exc:
            f.problems["prices"] = (f"plan.prices[{i}].amount", str(exc))
    for i, u in enumerate(p.usage_prices):
        price = None
        try:
            price = from_money(u.package_price) if u.HasField("package_price") else None
        except ValueError as exc:
            f.problems[f"usage{i}"] = (f"plan.usage_prices[{i}].package_price", str(exc))
        if u.package_price.currency_code and u.package_price.currency_code != p.currency_code:
            f.problems[f"usage{i}"] = (f"plan.usage_prices[{i}].package_price.currency_code",
                                       "must be the plan's currency")
        f.usage_prices.append((u.metric, u.included, u.package_size, price))
    return f


def coupon_to_proto(c: dict) -> pb.Coupon:
    return pb.Coupon(code=c["code"], percent_off=f"{c['percent_off']}" if c["percent_off"] is not None else "",
                     amount_off=f"{c['amount_off']}" if c["amount_off"] is not None else "",
                     currency_code=c["currency"] or "", duration=DURATION_OUT[c["duration"]],
                     duration_periods=c["duration_periods"] or 0, create_time=timestamp(c["created_at"]))


class PlanServicer(plan_service_pb2_grpc.PlanServiceServicer):
    def __init__(self, db: Database):
        self.db = db

    async def ListPlans(self, request: pb.ListPlansRequest, ctx) -> pb.ListPlansResponse:
        rows = await handlers.list_plans(self.db, context.current().tenant_id, request.include_all_versions)
        return pb.ListPlansResponse(plans=[plan_to_proto(r) for r in rows])

    async def GetPlan(self, request: pb.GetPlanRequest, ctx) -> pb.GetPlanResponse:
        return pb.GetPlanResponse(plan=plan_to_proto(await handlers.get_plan(self.db, context.current().tenant_id,
                                                                              request.id)))

    async def PublishPlan(self, request: pb.PublishPlanRequest, ctx) -> pb.PublishPlanResponse:
        row = await handlers.publish_plan(self.db, context.current().tenant_id, plan_from_proto(request.plan))
        return pb.PublishPlanResponse(plan=plan_to_proto({**row, "current": True}))

    async def CreateCoupon(self, request: pb.CreateCouponRequest, ctx) -> pb.CreateCouponResponse:
        c = request.coupon
        row = await handlers.create_coupon(self.db, context.current().tenant_id, c.code, c.percent_off, c.amount_off,
                                           c.currency_code, DURATION_IN.get(c.duration), c.duration_periods)
        return pb.CreateCouponResponse(coupon=coupon_to_proto(row))


