"""ReceiptService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.crm.v1 import receipt_pb2, receipt_service_pb2_grpc
from givance.crm.v1 import receipt_service_pb2 as pb

from chassis import context
from chassis.audit import ReadAudit
from chassis.convert import date as date_pb
from chassis.convert import money, timestamp
from chassis.db import Database
from services.crm.handlers import tax_receipts as handlers
from services.crm.handlers.tax_receipts import Receipt

_STATUS_OUT = {"issued": receipt_pb2.RECEIPT_STATUS_ISSUED, "void": receipt_pb2.RECEIPT_STATUS_VOID}


def receipt_to_proto(r: Receipt) -> receipt_pb2.Receipt:
    return receipt_pb2.Receipt(
        id=str(r.id), number=r.number, year=r.year, sequence=r.sequence, donation_id=str(r.donation_id),
        donor_id=str(r.donor_id), amount=money(r.amount, r.currency), gift_date=date_pb(r.gift_date),
        status=_STATUS_OUT[r.status], issue_time=timestamp(r.issued_at), replaces_id=str(r.replaces_id or ""),
        replaced_by_id=str(r.replaced_by_id or ""), void_reason=r.void_reason or "", void_time=timestamp(r.voided_at))


class ReceiptServicer(receipt_service_pb2_grpc.ReceiptServiceServicer):
    def __init__(self, db: Database, reads: ReadAudit):
        self.db = db
        self.reads = reads

    async def GetReceipt(self, request: pb.GetReceiptRequest, ctx) -> pb.GetReceiptResponse:
        r = await handlers.get_receipt(self.db, self.reads, context.current().tenant_id, request.id)
        return pb.GetReceiptResponse(receipt=receipt_to_proto(r))

    async def ListReceipts(self, request: pb.ListReceiptsRequest, ctx) -> pb.ListReceiptsResponse:
        rows, token = await handlers.list_receipts(self.db, self.reads, context.current().tenant_id, request.donor_id,
                                                   request.donation_id, request.year, request.page_size,
                                                   request.page_token)
        return pb.ListReceiptsResponse(receipts=[receipt_to_proto(r) for r in rows], next_page_token=token)
