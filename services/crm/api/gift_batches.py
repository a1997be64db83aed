"""GiftBatchService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.crm.v1 import donation_pb2, gift_batch_pb2, gift_batch_service_pb2_grpc
from givance.crm.v1 import gift_batch_service_pb2 as pb

from chassis import context
from chassis.convert import date as date_pb
from chassis.convert import money, money_field, timestamp
from chassis.db import Database
from chassis.errors import Violations
from chassis.resource import etag
from services.crm.api.donations import _METHOD_OUT, fields_from_proto
from services.crm.handlers import gift_batches as handlers
from services.crm.handlers.gift_batches import BatchGift, GiftBatch

_STATUS_OUT = {"open": gift_batch_pb2.GIFT_BATCH_STATUS_OPEN, "balanced": gift_batch_pb2.GIFT_BATCH_STATUS_BALANCED,
               "posted": gift_batch_pb2.GIFT_BATCH_STATUS_POSTED}


def batch_to_proto(b: GiftBatch) -> gift_batch_pb2.GiftBatch:
    return gift_batch_pb2.GiftBatch(
        id=str(b.id), name=b.name, expected_count=b.expected_count, expected_total=money(b.expected_total, b.currency),
        entered_count=b.entered_count, entered_total=money(b.entered_total, b.currency),
        status=_STATUS_OUT[handlers.status(b)], post_time=timestamp(b.posted_at),
        create_time=timestamp(b.created_at), update_time=timestamp(b.updated_at), etag=etag(b.version))


def gift_to_proto(g: BatchGift) -> gift_batch_pb2.BatchGift:
    return gift_batch_pb2.BatchGift(
        id=str(g.id), batch_id=str(g.batch_id), donation_id=str(g.donation_id or ""),
        donation=donation_pb2.Donation(
            donor_id=str(g.donor_id), project_id=str(g.project_id or ""), amount=money(g.amount, g.currency),
            date=date_pb(g.date), payment_method=_METHOD_OUT.get(g.payment_method, 0),
            reference_number=g.reference_number or "", notes=g.notes or "", tax_deductible=g.tax_deductible,
            pledge_id=str(g.pledge_id or "")))


class GiftBatchServicer(gift_batch_service_pb2_grpc.GiftBatchServiceServicer):
    def __init__(self, db: Database):
        self.db = db

    async def CreateGiftBatch(self, request: pb.CreateGiftBatchRequest, ctx) -> pb.CreateGiftBatchResponse:
        b = request.batch
        v = Violations()
        total = money_field(b, "expected_total", v, path="batch.expected_total")
        v.raise_if_any()
        row = await handlers.create_batch(self.db, context.current().tenant_id, b.name, b.expected_count, total,
                                          b.expected_total.currency_code, request.request_id)
        return pb.CreateGiftBatchResponse(batch=batch_to_proto(row))

    async def GetGiftBatch(self, request: pb.GetGiftBatchRequest, ctx) -> pb.GetGiftBatchResponse:
        return pb.GetGiftBatchResponse(batch=batch_to_proto(
            await handlers.get_batch(self.db, context.current().tenant_id, request.id)))

    async def ListGiftBatches(self, request: pb.ListGiftBatchesRequest, ctx) -> pb.ListGiftBatchesResponse:
        rows, token = await handlers.list_batches(self.db, context.current().tenant_id, request.page_size,
                                                  request.page_token)
        return pb.ListGiftBatchesResponse(batches=[batch_to_proto(r) for r in rows], next_page_token=token)

    async def AddBatchGift(self, request: pb.AddBatchGiftRequest, ctx) -> pb.AddBatchGiftResponse:
        gift, batch = await handlers.add_gift(self.db, context.current().tenant_id, request.batch_id,
                                              fields_from_proto(request.gift.donation))
        return pb.AddBatchGiftResponse(gift=gift_to_proto(gift), batch=batch_to_proto(batch))

    async def RemoveBatchGift(self, request: pb.RemoveBatchGiftRequest, ctx) -> pb.RemoveBatchGiftResponse:
        batch = await handlers.remove_gift(self.db, context.current().tenant_id, request.batch_id, request.gift_id)
        return pb.RemoveBatchGiftResponse(batch=batch_to_proto(batch))

    async def ListBatchGifts(self, request: pb.ListBatchGiftsRequest, ctx) -> pb.ListBatchGiftsResponse:
        rows, token = await handlers.list_gifts(self.db, context.current().tenant_id, request.batch_id,
                                                request.page_size, request.page_token)
        return pb.ListBatchGiftsResponse(gifts=[gift_to_proto(g) for g in rows], next_page_token=token)

    async def PostGiftBatch(self, request: pb.PostGiftBatchRequest, ctx) -> pb.PostGiftBatchResponse:
        return pb.PostGiftBatchResponse(batch=batch_to_proto(
            await handlers.post_batch(self.db, context.current().tenant_id, request.id, request.etag)))
