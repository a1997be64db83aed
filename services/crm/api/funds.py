"""FundService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.crm.v1 import fund_pb2, fund_service_pb2_grpc, insight_pb2
from givance.crm.v1 import fund_service_pb2 as pb

from chassis import context
from chassis.convert import date as date_pb
from chassis.convert import date_field, money, timestamp
from chassis.db import Database
from chassis.errors import InvalidArgument, Violations
from chassis.resource import etag
from services.crm.handlers import funds as handlers
from services.crm.handlers.funds import Fund, FundFields

_RESTRICTION_IN = {fund_pb2.FUND_RESTRICTION_UNSPECIFIED: None,
                   fund_pb2.FUND_RESTRICTION_UNRESTRICTED: "unrestricted",
                   fund_pb2.FUND_RESTRICTION_RESTRICTED: "restricted"}
_RESTRICTION_OUT = {v: k for k, v in _RESTRICTION_IN.items() if v}
_STATUS_IN = {fund_pb2.FUND_STATUS_UNSPECIFIED: None, fund_pb2.FUND_STATUS_ACTIVE: "active",
              fund_pb2.FUND_STATUS_CLOSED: "closed"}
_STATUS_OUT = {v: k for k, v in _STATUS_IN.items() if v}
_PERIOD_IN = {insight_pb2.SUMMARY_PERIOD_UNSPECIFIED: None, insight_pb2.SUMMARY_PERIOD_YEAR: "year",
              insight_pb2.SUMMARY_PERIOD_QUARTER: "quarter", insight_pb2.SUMMARY_PERIOD_MONTH: "month"}


def fields_from_proto(f: fund_pb2.Fund) -> FundFields:
    return FundFields(name=f.name, code=f.code or None, description=f.description or None,
                      restriction=_RESTRICTION_IN.get(f.restriction, "unknown"),
                      status=_STATUS_IN.get(f.status, "unknown"))


def fund_to_proto(f: Fund) -> fund_pb2.Fund:
    return fund_pb2.Fund(id=str(f.id), name=f.name, code=f.code or "", description=f.description or "",
                         restriction=_RESTRICTION_OUT[f.restriction], status=_STATUS_OUT[f.status],
                         create_time=timestamp(f.created_at), update_time=timestamp(f.updated_at),
                         etag=etag(f.version))


class FundServicer(fund_service_pb2_grpc.FundServiceServicer):
    def __init__(self, db: Database):
        self.db = db

    async def CreateFund(self, request: pb.CreateFundRequest, ctx) -> pb.CreateFundResponse:
        row = await handlers.create_fund(self.db, context.current().tenant_id, fields_from_proto(request.fund),
                                         request.request_id)
        return pb.CreateFundResponse(fund=fund_to_proto(row))

    async def GetFund(self, request: pb.GetFundRequest, ctx) -> pb.GetFundResponse:
        return pb.GetFundResponse(fund=fund_to_proto(
            await handlers.get_fund(self.db, context.current().tenant_id, request.id)))

    async def ListFunds(self, request: pb.ListFundsRequest, ctx) -> pb.ListFundsResponse:
        status = _STATUS_IN.get(request.status, "unknown")
        if status == "unknown":
            raise InvalidArgument.field("status", "is not a known fund status")
        rows, token = await handlers.list_funds(self.db, context.current().tenant_id, status, request.page_size,
                                                request.page_token)
        return pb.ListFundsResponse(funds=[fund_to_proto(r) for r in rows], next_page_token=token)

    async def UpdateFund(self, request: pb.UpdateFundRequest, ctx) -> pb.UpdateFundResponse:
        row = await handlers.update_fund(self.db, context.current().tenant_id, request.fund.id, request.fund.etag,
                                         fields_from_proto(request.fund), list(request.update_mask.paths))
        return pb.UpdateFundResponse(fund=fund_to_proto(row))

    async def ListFundTotals(self, request: pb.ListFundTotalsRequest, ctx) -> pb.ListFundTotalsResponse:
        v = Violations()
        start = date_field(request, "start_date", v)
        end = date_field(request, "end_date", v)
        v.raise_if_any()
        totals = await handlers.fund_totals(self.db, context.current().tenant_id, request.fund_id, start, end,
                                            _PERIOD_IN.get(request.period, "unknown"))
        return pb.ListFundTotalsResponse(totals=[
            fund_pb2.FundPeriodTotal(fund_id=str(t.fund_id), period_start=date_pb(t.period_start),
                                     allocated_amount=money(t.allocated, t.currency),
                                     refunded_amount=money(t.refunded, t.currency),
                                     net_amount=money(t.allocated - t.refunded, t.currency), gift_count=t.gifts)
            for t in totals])
