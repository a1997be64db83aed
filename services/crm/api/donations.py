"""DonationService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.crm.v1 import donation_pb2, donation_service_pb2_grpc
from givance.crm.v1 import donation_service_pb2 as pb

from chassis import context
from chassis.audit import ReadAudit
from chassis.convert import date as date_pb
from chassis.convert import from_date, from_money, money, timestamp
from chassis.db import Database
from chassis.errors import Violations
from services.crm.domain.donations import DonationFields
from services.crm.handlers import donations as handlers

_METHOD_IN = {
    donation_pb2.PAYMENT_METHOD_UNSPECIFIED: None, donation_pb2.PAYMENT_METHOD_CASH: "cash",
    donation_pb2.PAYMENT_METHOD_CHECK: "check", donation_pb2.PAYMENT_METHOD_CREDIT_CARD: "credit_card",
    donation_pb2.PAYMENT_METHOD_WIRE: "wire", donation_pb2.PAYMENT_METHOD_CRYPTO: "crypto",
    donation_pb2.PAYMENT_METHOD_OTHER: "other",
}
_METHOD_OUT = {v: k for k, v in _METHOD_IN.items()}


def fields_from_proto(d: donation_pb2.Donation) -> DonationFields:
    v = Violations()
    amount = None
    if not d.HasField("amount"):
        v.add("donation.amount", "is required")
    else:
        try:
            amount = from_money(d.amount)
        except ValueError as exc:
            v.add("donation.amount", str(exc))
    gift_date = None
    if not d.HasField("date"):
        v.add("donation.date", "is required")
    else:
        try:
            gift_date = from_date(d.date)
        except ValueError as exc:
            v.add("donation.date", f"is not a valid date: {exc}")
    if d.payment_method not in _METHOD_IN:
        v.add("donation.payment_method", f"unknown payment method {d.payment_method}")
    v.raise_if_any()
    return DonationFields(
        donor_id=d.donor_id, project_id=d.project_id or None, amount=amount, currency=d.amount.currency_code,
        date=gift_date, payment_method=_METHOD_IN[d.payment_method], reference_number=d.reference_number or None,
        notes=d.notes or None, is_recurring=d.is_recurring, recurring_frequency=d.recurring_frequency or None,
        tax_deductible=d.tax_deductible,
    )


def donation_to_proto(row: dict) -> donation_pb2.Donation:
    return donation_pb2.Donation(
        id=str(row["id"]), organization_id=str(row["organization_id"]), donor_id=str(row["donor_id"]),
        project_id=str(row["project_id"] or ""), amount=money(row["amount"], row["currency"]),
        date=date_pb(row["date"]), payment_method=_METHOD_OUT.get(row["payment_method"], 0),
        reference_number=row["reference_number"] or "", notes=row["notes"] or "",
        is_recurring=row["is_recurring"], recurring_frequency=row["recurring_frequency"] or "",
        tax_deductible=row["tax_deductible"], create_time=timestamp(row["created_at"]),
        update_time=timestamp(row["updated_at"]),
    )


class DonationServicer(donation_service_pb2_grpc.DonationServiceServicer):
    def __init__(self, db: Database, reads: ReadAudit):
        self.db = db
        self.reads = reads

    async def RecordDonation(self, request: pb.RecordDonationRequest, ctx) -> pb.RecordDonationResponse:
        row = await handlers.record_donation(self.db, context.current().tenant_id,
                                             fields_from_proto(request.donation), request.request_id)
        return pb.RecordDonationResponse(donation=donation_to_proto(row))

    async def ListDonations(self, request: pb.ListDonationsRequest, ctx) -> pb.ListDonationsResponse:
        rows, token = await handlers.list_donations(self.db, self.reads, context.current().tenant_id, request.donor_id,
                                                    request.page_size, request.page_token)
        return pb.ListDonationsResponse(donations=[donation_to_proto(r) for r in rows], next_page_token=token)
