"""InvoiceService: the organization's invoices from the platform."""

from __future__ import annotations

from givance.billing.v1 import invoice_pb2, invoice_service_pb2_grpc
from givance.billing.v1 import invoice_service_pb2 as pb

from chassis import context
from chassis.convert import from_money, money, timestamp
from chassis.db import Database
from chassis.errors import InvalidArgument
from services.billing.domain.clock import Clock
from services.billing.domain.invoices import number_text
from services.billing.handlers import invoices as handlers

STATUS_OUT = {"draft": invoice_pb2.INVOICE_STATUS_DRAFT, "open": invoice_pb2.INVOICE_STATUS_OPEN,
              "paid": invoice_pb2.INVOICE_STATUS_PAID, "void": invoice_pb2.INVOICE_STATUS_VOID,
              "uncollectible": invoice_pb2.INVOICE_STATUS_UNCOLLECTIBLE}
KIND_OUT = {"invoice": invoice_pb2.INVOICE_KIND_INVOICE, "credit_note": invoice_pb2.INVOICE_KIND_CREDIT_NOTE}


def invoice_to_proto(i: dict) -> invoice_pb2.Invoice:
    cur = i["currency"]
    return invoice_pb2.Invoice(
        id=str(i["id"]), organization_id=str(i["organization_id"]), number=number_text(i["number"]),
        kind=KIND_OUT[i["kind"]], status=STATUS_OUT[i["status"]],
        corrects_invoice_id=str(i["corrects_invoice_id"] or ""), period_start_time=timestamp(i["period_start"]),
        period_end_time=timestamp(i["period_end"]),
        lines=[invoice_pb2.InvoiceLine(kind=x["kind"], description=x["description"],
                                       quantity=f"{x['quantity'].normalize():f}",
                                       unit_amount=money(x["unit_amount"], cur), amount=money(x["amount"], cur))
               for x in i["lines"]],
        subtotal=money(i["subtotal"], cur), discount=money(i["discount"], cur),
        tax_rate=f"{i['tax_rate'].normalize():f}", tax=money(i["tax"], cur), total=money(i["total"], cur),
        create_time=timestamp(i["created_at"]), finalize_time=timestamp(i["finalized_at"]),
        paid_time=timestamp(i["paid_at"]))


class InvoiceServicer(invoice_service_pb2_grpc.InvoiceServiceServicer):
    def __init__(self, db: Database, clock: Clock):
        self.db, self.clock = db, clock

    async def ListInvoices(self, request: pb.ListInvoicesRequest, ctx) -> pb.ListInvoicesResponse:
        rows, token = await handlers.list_invoices(self.db, context.current().tenant_id, request.page_size,
                                                   request.page_token)
        return pb.ListInvoicesResponse(invoices=[invoice_to_proto(r) for r in rows], next_page_token=token)

    async def GetInvoice(self, request: pb.GetInvoiceRequest, ctx) -> pb.GetInvoiceResponse:
        return pb.GetInvoiceResponse(invoice=invoice_to_proto(
            await handlers.get_invoice(self.db, context.current().tenant_id, request.id)))

    async def GetInvoicePdf(self, request: pb.GetInvoicePdfRequest, ctx) -> pb.GetInvoicePdfResponse:
        inv = await handlers.get_invoice(self.db, context.current().tenant_id, request.id)
        return pb.GetInvoicePdfResponse(content=handlers.render_pdf(inv), content_type="application/pdf",
                                        filename=f"{number_text(inv['number']) or 'draft-' + str(inv['id'])}.pdf")

    async def CreateCreditNote(self, request: pb.CreateCreditNoteRequest, ctx) -> pb.CreateCreditNoteResponse:
        amount = None
        if request.HasField("amount"):
            try:
                amount = from_money(request.amount)
            except ValueError as exc:
                raise InvalidArgument.field("amount", str(exc)) from None
        note = await handlers.credit_note(self.db, context.current().tenant_id, request.invoice_id, amount,
                                          request.amount.currency_code, request.reason, request.request_id,
                                          self.clock.now())
        return pb.CreateCreditNoteResponse(credit_note=invoice_to_proto(note))

    async def VoidInvoice(self, request: pb.VoidInvoiceRequest, ctx) -> pb.VoidInvoiceResponse:
        inv = await handlers.void(self.db, context.current().tenant_id, request.id, self.clock.now())
        return pb.VoidInvoiceResponse(invoice=invoice_to_proto(inv))
