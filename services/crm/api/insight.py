"""InsightService: proto in, handler call, proto out."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from givance.crm.v1 import insight_pb2, insight_service_pb2_grpc
from givance.crm.v1 import insight_service_pb2 as pb

from chassis import context
from chassis.audit import ReadAudit
from chassis.convert import date as date_pb
from chassis.convert import date_field, money
from chassis.db import Database
from chassis.errors import Violations
from services.crm.handlers import insight as handlers

_PERIOD_IN = {insight_pb2.SUMMARY_PERIOD_YEAR: "year", insight_pb2.SUMMARY_PERIOD_QUARTER: "quarter",
              insight_pb2.SUMMARY_PERIOD_MONTH: "month"}


def _gift(amount, day, cur: str) -> insight_pb2.GiftFact | None:
    if amount is None:
        return None
    return insight_pb2.GiftFact(amount=money(Decimal(amount), cur), date=date_pb(day))


class InsightServicer(insight_service_pb2_grpc.InsightServiceServicer):
    def __init__(self, db: Database, reads: ReadAudit):
        self.db = db
        self.reads = reads

    async def GetDonorGiving(self, request: pb.GetDonorGivingRequest, ctx) -> pb.GetDonorGivingResponse:
        head, years, cur = await handlers.get_donor_giving(self.db, self.reads, context.current().tenant_id,
                                                           request.donor_id, request.currency_code)
        return pb.GetDonorGivingResponse(giving=insight_pb2.DonorGiving(
            donor_id=str(head.donor_id), currency_code=cur,
            lifetime_total=money(Decimal(head.lifetime_total), cur), gift_count=head.gift_count,
            largest_gift=_gift(head.largest_amount, head.largest_date, cur),
            first_gift=_gift(head.first_amount, head.first_date, cur),
            last_gift=_gift(head.last_amount, head.last_date, cur),
            years=[insight_pb2.YearTotal(year=y.year, total=money(Decimal(y.total), cur),
                                         gift_count=y.gift_count) for y in years],
        ))

    async def ListLybuntDonors(self, request: pb.ListLybuntDonorsRequest, ctx) -> pb.ListLybuntDonorsResponse:
        return await self._lapsed(request, handlers.list_lybunt, pb.ListLybuntDonorsResponse, insight_pb2.LybuntDonor,
                                  "last_year_total")

    async def ListSybuntDonors(self, request: pb.ListSybuntDonorsRequest, ctx) -> pb.ListSybuntDonorsResponse:
        return await self._lapsed(request, handlers.list_sybunt, pb.ListSybuntDonorsResponse, insight_pb2.SybuntDonor,
                                  "lifetime_total")

    async def _lapsed(self, request, list_donors, response, donor, total: str):
        """LYBUNT and SYBUNT: the lapsed donors with what they gave before (`total`) and their last gift."""
        rows, token, cur = await list_donors(self.db, self.reads, context.current().tenant_id, request.year,
                                             request.currency_code, request.page_size, request.page_token)
        return response(next_page_token=token, donors=[
            donor(donor_id=str(r.donor_id), last_gift_date=date_pb(r.last_gift_date),
                  **{total: money(getattr(r, total), cur)}) for r in rows])

    async def ListDonorRfm(self, request: pb.ListDonorRfmRequest, ctx) -> pb.ListDonorRfmResponse:
        v = Violations()
        as_of = date_field(request, "as_of", v) if request.HasField("as_of") \
            else datetime.now(UTC).date()
        v.raise_if_any()
        rows, token, cur = await handlers.list_rfm(self.db, self.reads, context.current().tenant_id, as_of,
                                                   request.currency_code, request.page_size, request.page_token)
        return pb.ListDonorRfmResponse(next_page_token=token, donors=[
            insight_pb2.DonorRfm(donor_id=str(r.donor_id), recency_days=r.recency_days,
                                 frequency=r.frequency, monetary=money(Decimal(r.monetary), cur),
                                 recency_score=r.recency_score, frequency_score=r.frequency_score,
                                 monetary_score=r.monetary_score, score=r.score) for r in rows])

    async def GetGivingSummary(self, request: pb.GetGivingSummaryRequest, ctx) -> pb.GetGivingSummaryResponse:
        v = Violations()
        unit = _PERIOD_IN.get(request.period)
        if unit is None:
            v.add("period", "is required" if request.period == insight_pb2.SUMMARY_PERIOD_UNSPECIFIED
                  else f"unknown period {request.period}")
        start = date_field(request, "start_date", v, required=True)
        end = date_field(request, "end_date", v, required=True)
        v.raise_if_any()
        periods, cur = await handlers.giving_summary(self.db, self.reads, context.current().tenant_id, unit, start,
                                                     end, request.currency_code)
        out = []
        for p in periods:
            item = insight_pb2.GivingPeriod(
                start_date=date_pb(p.start_date), end_date=date_pb(p.end_date), total=money(p.total, cur),
                gift_count=p.gift_count, donor_count=p.donor_count, average_gift=money(p.average_gift, cur),
                previous_donor_count=p.previous_donor_count, retained_donor_count=p.retained_donor_count,
                pledged_amount=money(p.pledged, cur), pledge_count=p.pledge_count,
                pledge_received_amount=money(p.pledge_received, cur))
            if p.retention_rate is not None:
                item.retention_rate = float(p.retention_rate)
            out.append(item)
        return pb.GetGivingSummaryResponse(periods=out)
