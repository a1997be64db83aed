"""DonationService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.crm.v1 import donation_pb2, donation_service_pb2_grpc
from givance.crm.v1 import donation_service_pb2 as pb

from chassis import context
from chassis.audit import ReadAudit
from chassis.convert import date as date_pb
from chassis.convert import date_field, from_timestamp, money, money_field, timestamp
from chassis.db import Database
from chassis.errors import Violations
from chassis.resource import etag
from services.crm.handlers import donations as handlers
from services.crm.handlers import funds as fund_handlers
from services.crm.handlers import soft_credits as credit_handlers
from services.crm.handlers import tax_receipts as receipt_handlers
from services.crm.handlers.donations import Donation, DonationFields, Refund, Revision
from services.crm.handlers.funds import AllocationInput
from services.crm.handlers.gift_extras import Tribute
from services.crm.handlers.soft_credits import SoftCreditInput

_METHOD_IN = {
    donation_pb2.PAYMENT_METHOD_UNSPECIFIED: None, donation_pb2.PAYMENT_METHOD_CASH: "cash",
    donation_pb2.PAYMENT_METHOD_CHECK: "check", donation_pb2.PAYMENT_METHOD_CREDIT_CARD: "credit_card",
    donation_pb2.PAYMENT_METHOD_WIRE: "wire", donation_pb2.PAYMENT_METHOD_CRYPTO: "crypto",
    donation_pb2.PAYMENT_METHOD_OTHER: "other",
}
_METHOD_OUT = {v: k for k, v in _METHOD_IN.items()}


_STATUS_OUT = {"recorded": donation_pb2.DONATION_STATUS_RECORDED,
               "partially_refunded": donation_pb2.DONATION_STATUS_PARTIALLY_REFUNDED,
               "refunded": donation_pb2.DONATION_STATUS_REFUNDED}


_ROLE_IN = {
    donation_pb2.SOFT_CREDIT_ROLE_SPOUSE: "spouse", donation_pb2.SOFT_CREDIT_ROLE_HOUSEHOLD_MEMBER: "household_member",
    donation_pb2.SOFT_CREDIT_ROLE_SOLICITOR: "solicitor",
    donation_pb2.SOFT_CREDIT_ROLE_DONOR_ADVISED_FUND_ADVISOR: "donor_advised_fund_advisor",
    donation_pb2.SOFT_CREDIT_ROLE_MATCHED_EMPLOYEE: "matched_employee",
    donation_pb2.SOFT_CREDIT_ROLE_INFLUENCER: "influencer", donation_pb2.SOFT_CREDIT_ROLE_OTHER: "other",
}
_ROLE_OUT = {v: k for k, v in _ROLE_IN.items()}


_KIND_IN = {donation_pb2.TRIBUTE_KIND_HONOR: "honor", donation_pb2.TRIBUTE_KIND_MEMORY: "memory"}
_KIND_OUT = {v: k for k, v in _KIND_IN.items()}
_TRIBUTE_TEXT = ("honoree_name", "notify_name", "notify_email", "notify_street", "notify_city", "notify_state",
                 "notify_postal_code", "notify_country", "message")


def tribute_from_proto(d: donation_pb2.Donation) -> Tribute | None:
    if not d.HasField("tribute"):
        return None
    t = d.tribute
    return Tribute(kind=_KIND_IN.get(t.kind), **{f: getattr(t, f) for f in _TRIBUTE_TEXT})


def tribute_to_proto(t: Tribute | None) -> donation_pb2.Tribute | None:
    if t is None:
        return None
    return donation_pb2.Tribute(kind=_KIND_OUT[t.kind], **{f: getattr(t, f) or "" for f in _TRIBUTE_TEXT})


def credits_from_proto(credits, path: str, v: Violations) -> list[SoftCreditInput]:
    out = []
    for i, c in enumerate(credits):
        amount = money_field(c, "amount", v, path=f"{path}[{i}].amount")
        out.append(SoftCreditInput(donor_id=c.donor_id, role=_ROLE_IN.get(c.role), amount=amount,
                                   currency=c.amount.currency_code))
    return out


def allocations_from_proto(items, path: str, v: Violations) -> list[AllocationInput]:
    out = []
    for i, a in enumerate(items):
        amount = money_field(a, "amount", v, path=f"{path}[{i}].amount")
        out.append(AllocationInput(fund_id=a.fund_id, amount=amount, currency=a.amount.currency_code))
    return out


def fields_from_proto(d: donation_pb2.Donation, only: set[str] | None = None) -> DonationFields:
    """The gift's fields; with `only` (an update mask's paths), amount and date are read (and
    required) only when named there."""
    v = Violations()
    amount = None
    if only is None or "amount" in only:
        amount = money_field(d, "amount", v, path="donation.amount", required=True)
    gift_date = None
    if only is None or "date" in only:
        gift_date = date_field(d, "date", v, path="donation.date", required=True)
    if d.payment_method not in _METHOD_IN:
        v.add("donation.payment_method", f"unknown payment method {d.payment_method}")
    credits = credits_from_proto(d.soft_credits, "donation.soft_credits", v) if only is None else []
    split = allocations_from_proto(d.allocations, "donation.allocations", v) if only is None else []
    v.raise_if_any()
    return DonationFields(
        donor_id=d.donor_id, project_id=d.project_id or None, amount=amount, currency=d.amount.currency_code,
        date=gift_date, payment_method=_METHOD_IN[d.payment_method], reference_number=d.reference_number or None,
        notes=d.notes or None, is_recurring=d.is_recurring, recurring_frequency=d.recurring_frequency or None,
        tax_deductible=d.tax_deductible if d.HasField("tax_deductible") else True, soft_credits=credits,
        allocations=split, pledge_id=(d.pledge_id or None) if only is None else None,
        tribute=tribute_from_proto(d) if only is None else None,
    )


def donation_to_proto(d: Donation) -> donation_pb2.Donation:
    return donation_pb2.Donation(
        id=str(d.id), organization_id=str(d.organization_id), donor_id=str(d.donor_id),
        project_id=str(d.project_id or ""), amount=money(d.amount, d.currency),
        date=date_pb(d.date), payment_method=_METHOD_OUT.get(d.payment_method, 0),
        reference_number=d.reference_number or "", notes=d.notes or "",
        is_recurring=d.is_recurring, recurring_frequency=d.recurring_frequency or "",
        tax_deductible=d.tax_deductible, create_time=timestamp(d.created_at),
        update_time=timestamp(d.updated_at), next_expected_date=date_pb(d.next_expected_date),
        refunded_amount=money(d.refunded_amount, d.currency), status=_STATUS_OUT[d.status],
        receipt_sent=d.receipt_sent, receipt_send_time=timestamp(d.receipt_sent_date), etag=etag(d.version),
        soft_credits=[donation_pb2.SoftCredit(id=str(c.id), donor_id=str(c.donor_id), role=_ROLE_OUT[c.role],
                                              amount=money(c.amount, d.currency)) for c in d.soft_credits],
        allocations=[donation_pb2.FundAllocation(fund_id=str(a.fund_id), amount=money(a.amount, d.currency),
                                                 refunded_amount=money(a.refunded_amount, d.currency))
                     for a in d.allocations],
        pledge_id=str(d.pledge_id or ""), tribute=tribute_to_proto(d.tribute), receipt_number=d.receipt_number or "",
    )


def refund_to_proto(r: Refund) -> donation_pb2.DonationRefund:
    return donation_pb2.DonationRefund(
        id=str(r.id), donation_id=str(r.donation_id), amount=money(r.amount, r.currency),
        reason=r.reason, refund_date=date_pb(r.refund_date), create_time=timestamp(r.created_at),
    )


def revision_to_proto(r: Revision) -> donation_pb2.DonationRevision:
    return donation_pb2.DonationRevision(
        donation_id=str(r.donation_id), revision=r.revision, changed_fields=list(r.changed_fields),
        before_json=r.before, after_json=r.after, reason=r.reason, actor_id=r.actor_id or "",
        create_time=timestamp(r.created_at),
    )


def _actor() -> str | None:
    principal = context.current().principal
    return principal.subject if principal else None


class DonationServicer(donation_service_pb2_grpc.DonationServiceServicer):
    def __init__(self, db: Database, reads: ReadAudit):
        self.db = db
        self.reads = reads

    async def RecordDonation(self, request: pb.RecordDonationRequest, ctx) -> pb.RecordDonationResponse:
        row = await handlers.record_donation(self.db, context.current().tenant_id,
                                             fields_from_proto(request.donation), request.request_id)
        return pb.RecordDonationResponse(donation=donation_to_proto(row))

    async def ListDonations(self, request: pb.ListDonationsRequest, ctx) -> pb.ListDonationsResponse:
        v = Violations()
        start = date_field(request, "start_date", v)
        end = date_field(request, "end_date", v)
        v.raise_if_any()
        rows, token = await handlers.list_donations(self.db, self.reads, context.current().tenant_id,
                                                    handlers.ListDonations(
            donor_id=request.donor_id, page_size=request.page_size, page_token=request.page_token,
            project_id=request.project_id, recurring_only=request.recurring_only, start_date=start, end_date=end))
        return pb.ListDonationsResponse(donations=[donation_to_proto(r) for r in rows], next_page_token=token)

    async def GetDonation(self, request: pb.GetDonationRequest, ctx) -> pb.GetDonationResponse:
        row, refunds = await handlers.get_donation(self.db, self.reads, context.current().tenant_id, request.id)
        return pb.GetDonationResponse(donation=donation_to_proto(row), refunds=[refund_to_proto(r) for r in refunds])

    async def UpdateDonation(self, request: pb.UpdateDonationRequest, ctx) -> pb.UpdateDonationResponse:
        paths = list(request.update_mask.paths)
        patch = fields_from_proto(request.donation, set(paths) if paths else None)
        row = await handlers.update_donation(self.db, context.current().tenant_id, request.donation.id,
                                             request.donation.etag, patch, paths, request.reason, _actor())
        return pb.UpdateDonationResponse(donation=donation_to_proto(row))

    async def RefundDonation(self, request: pb.RefundDonationRequest, ctx) -> pb.RefundDonationResponse:
        v = Violations()
        amount = money_field(request, "amount", v)
        refund_date = date_field(request, "refund_date", v)
        v.raise_if_any()
        row, refund = await handlers.refund_donation(
            self.db, context.current().tenant_id, request.donation_id, amount, request.amount.currency_code,
            request.reason, refund_date, request.request_id, _actor())
        return pb.RefundDonationResponse(donation=donation_to_proto(row), refund=refund_to_proto(refund))

    async def SetDonationSoftCredits(self, request: pb.SetDonationSoftCreditsRequest,
                                     ctx) -> pb.SetDonationSoftCreditsResponse:
        v = Violations()
        credits = credits_from_proto(request.soft_credits, "soft_credits", v)
        v.raise_if_any()
        row = await credit_handlers.set_soft_credits(self.db, context.current().tenant_id, request.donation_id,
                                                     request.etag, credits)
        return pb.SetDonationSoftCreditsResponse(donation=donation_to_proto(row))

    async def SetDonationAllocations(self, request: pb.SetDonationAllocationsRequest,
                                     ctx) -> pb.SetDonationAllocationsResponse:
        v = Violations()
        split = allocations_from_proto(request.allocations, "allocations", v)
        v.raise_if_any()
        row = await fund_handlers.set_allocations(self.db, context.current().tenant_id, request.donation_id,
                                                  request.etag, split)
        return pb.SetDonationAllocationsResponse(donation=donation_to_proto(row))

    async def ListDonationRevisions(self, request: pb.ListDonationRevisionsRequest,
                                    ctx) -> pb.ListDonationRevisionsResponse:
        rows, token = await handlers.list_revisions(self.db, self.reads, context.current().tenant_id,
                                                    request.donation_id, request.page_size, request.page_token)
        return pb.ListDonationRevisionsResponse(revisions=[revision_to_proto(r) for r in rows], next_page_token=token)

    async def MarkReceiptsSent(self, request: pb.MarkReceiptsSentRequest, ctx) -> pb.MarkReceiptsSentResponse:
        send_time = from_timestamp(request.send_time) if request.HasField("send_time") else None
        rows, marked = await receipt_handlers.mark_receipts_sent(self.db, context.current().tenant_id,
                                                         list(request.donation_ids), send_time)
        return pb.MarkReceiptsSentResponse(donations=[donation_to_proto(r) for r in rows], newly_marked_count=marked)

    async def GetReceiptSummary(self, request: pb.GetReceiptSummaryRequest, ctx) -> pb.GetReceiptSummaryResponse:
        totals = await receipt_handlers.receipt_summary(self.db, self.reads, context.current().tenant_id,
                                                        request.donor_id, request.year)
        return pb.GetReceiptSummaryResponse(donor_id=request.donor_id, year=request.year, totals=[
            pb.ReceiptCurrencyTotal(
                total=money(t.total, t.currency), gift_count=t.gift_count,
                gifts=[pb.ReceiptGift(donation_id=g.id, date=date_pb(g.date), amount=money(g.amount, t.currency),
                                      reference_number=g.reference_number or "", receipt_sent=g.receipt_sent,
                                      receipt_number=g.receipt_number or "")
                       for g in t.gifts])
            for t in totals])
