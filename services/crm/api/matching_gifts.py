"""MatchingGiftService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.crm.v1 import matching_gift_pb2, matching_gift_service_pb2_grpc
from givance.crm.v1 import matching_gift_service_pb2 as pb

from chassis import context
from chassis.convert import date as date_pb
from chassis.convert import date_field, money, money_field, timestamp
from chassis.db import Database
from chassis.errors import InvalidArgument, Violations
from chassis.resource import etag
from services.crm.api.donations import _METHOD_IN, donation_to_proto
from services.crm.handlers import matching_gifts as handlers
from services.crm.handlers.matching_gifts import MatchingGift, MatchInput

_STATUS_IN = {matching_gift_pb2.MATCHING_GIFT_STATUS_PLEDGED: "pledged",
              matching_gift_pb2.MATCHING_GIFT_STATUS_RECEIVED: "received"}
_STATUS_OUT = {v: k for k, v in _STATUS_IN.items()}


def match_to_proto(m: MatchingGift) -> matching_gift_pb2.MatchingGift:
    return matching_gift_pb2.MatchingGift(
        id=str(m.id), donation_id=str(m.donation_id), employer_donor_id=str(m.employer_donor_id),
        amount=money(m.amount, m.currency), expected_date=date_pb(m.expected_date), status=_STATUS_OUT[m.status],
        match_donation_id=str(m.match_donation_id or ""), employee_donor_id=str(m.employee_donor_id),
        create_time=timestamp(m.created_at), update_time=timestamp(m.updated_at), etag=etag(m.version))


class MatchingGiftServicer(matching_gift_service_pb2_grpc.MatchingGiftServiceServicer):
    def __init__(self, db: Database):
        self.db = db

    async def CreateMatchingGift(self, request: pb.CreateMatchingGiftRequest, ctx) -> pb.CreateMatchingGiftResponse:
        m = request.matching_gift
        v = Violations()
        amount = money_field(m, "amount", v, path="matching_gift.amount")
        expected = date_field(m, "expected_date", v, path="matching_gift.expected_date")
        v.raise_if_any()
        row = await handlers.create_match(self.db, context.current().tenant_id, MatchInput(
            donation_id=m.donation_id, employer_donor_id=m.employer_donor_id, amount=amount,
            currency=m.amount.currency_code, expected_date=expected), request.request_id)
        return pb.CreateMatchingGiftResponse(matching_gift=match_to_proto(row))

    async def GetMatchingGift(self, request: pb.GetMatchingGiftRequest, ctx) -> pb.GetMatchingGiftResponse:
        row = await handlers.get_match(self.db, context.current().tenant_id, request.id)
        return pb.GetMatchingGiftResponse(matching_gift=match_to_proto(row))

    async def ListMatchingGifts(self, request: pb.ListMatchingGiftsRequest, ctx) -> pb.ListMatchingGiftsResponse:
        status = _STATUS_IN.get(request.status)
        if request.status and status is None:
            raise InvalidArgument.field("status", f"unknown status {request.status}")
        rows, token = await handlers.list_matches(self.db, context.current().tenant_id, request.donation_id,
                                                  request.employer_donor_id, status, request.page_size,
                                                  request.page_token)
        return pb.ListMatchingGiftsResponse(matching_gifts=[match_to_proto(r) for r in rows], next_page_token=token)

    async def ReceiveMatchingGift(self, request: pb.ReceiveMatchingGiftRequest,
                                  ctx) -> pb.ReceiveMatchingGiftResponse:
        v = Violations()
        when = date_field(request, "date", v, required=True)
        if request.payment_method not in _METHOD_IN:
            v.add("payment_method", f"unknown payment method {request.payment_method}")
        v.raise_if_any()
        row, gift = await handlers.receive_match(self.db, context.current().tenant_id, request.id, request.etag, when,
                                                 _METHOD_IN[request.payment_method], request.reference_number)
        return pb.ReceiveMatchingGiftResponse(matching_gift=match_to_proto(row), donation=donation_to_proto(gift))
