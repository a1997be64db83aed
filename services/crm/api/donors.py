"""DonorService: proto in, handler call, proto out."""

from __future__ import annotations

from decimal import Decimal

from givance.crm.v1 import donor_pb2, donor_service_pb2_grpc
from givance.crm.v1 import donor_service_pb2 as pb
from google.protobuf import struct_pb2
from google.protobuf.json_format import MessageToDict

from chassis import context
from chassis.audit import ReadAudit
from chassis.convert import date as date_pb
from chassis.convert import from_timestamp, money, timestamp
from chassis.db import Database
from chassis.errors import InvalidArgument
from services.crm.api import donor_transfer
from services.crm.domain import donor_matching as matching_rules
from services.crm.domain import donors as rules
from services.crm.domain.donors import etag
from services.crm.handlers import donor_matching as matching
from services.crm.handlers import donors as handlers

_TYPE_IN = {donor_pb2.DONOR_TYPE_UNSPECIFIED: rules.INDIVIDUAL, donor_pb2.DONOR_TYPE_INDIVIDUAL: rules.INDIVIDUAL,
            donor_pb2.DONOR_TYPE_COUPLE: rules.COUPLE}
_TYPE_OUT = {rules.INDIVIDUAL: donor_pb2.DONOR_TYPE_INDIVIDUAL, rules.COUPLE: donor_pb2.DONOR_TYPE_COUPLE}
_REASON_OUT = {matching_rules.SAME_EMAIL: pb.DUPLICATE_REASON_SAME_EMAIL,
               matching_rules.SAME_PHONE: pb.DUPLICATE_REASON_SAME_PHONE,
               matching_rules.SIMILAR_NAME_SAME_ADDRESS: pb.DUPLICATE_REASON_SIMILAR_NAME_SAME_ADDRESS}


def fields_from_proto(d: donor_pb2.Donor) -> rules.DonorFields:
    if d.type not in _TYPE_IN:
        raise InvalidArgument.field("donor.type", f"unknown donor type {d.type}")
    return rules.DonorFields(
        external_id=d.external_id, donor_type=_TYPE_IN[d.type], first_name=d.first_name, last_name=d.last_name,
        email=d.email, phone=d.phone, spouse_first_name=d.spouse_first_name, spouse_last_name=d.spouse_last_name,
        spouse_email=d.spouse_email, address_street=d.address.street, address_city=d.address.city,
        address_state=d.address.state, address_zip=d.address.postal_code, address_country=d.address.country,
        journey_stage=d.journey_stage, ai_classification=d.ai_classification,
        last_contact_at=from_timestamp(d.last_contact_time) if d.HasField("last_contact_time") else None,
        notes=d.notes, tags=list(d.tags),
        custom_fields=MessageToDict(d.custom_fields) if d.HasField("custom_fields") else {},
        formal_salutation=d.formal_salutation, informal_salutation=d.informal_salutation,
    )


def donor_to_proto(row: dict) -> donor_pb2.Donor:
    custom = struct_pb2.Struct()
    custom.update(row["custom_fields"] or {})
    formal, informal = rules.salutations_of(row)
    return donor_pb2.Donor(
        id=str(row["id"]), organization_id=str(row["organization_id"]), external_id=row["external_id"] or "",
        type=_TYPE_OUT[row["donor_type"]], first_name=row["first_name"], last_name=row["last_name"],
        email=row["email"] or "", phone=row["phone"] or "", spouse_first_name=row["spouse_first_name"] or "",
        spouse_last_name=row["spouse_last_name"] or "", spouse_email=row["spouse_email"] or "",
        address=donor_pb2.Address(street=row["address_street"] or "", city=row["address_city"] or "",
                                  state=row["address_state"] or "", postal_code=row["address_zip"] or "",
                                  country=row["address_country"] or ""),
        journey_stage=row["journey_stage"] or "", ai_classification=row["ai_classification"] or "",
        last_contact_time=timestamp(row["last_contact_at"]), notes=row["notes"] or "", tags=row["tags"] or [],
        custom_fields=custom,
        giving_totals=[
            donor_pb2.GivingTotal(
                lifetime_amount=money(Decimal(g["amount"]), g["currency"]), donation_count=g["count"],
                first_gift_date=date_pb(_date(g["first"])), last_gift_date=date_pb(_date(g["last"])),
            )
            for g in row.get("giving") or []
        ],
        create_time=timestamp(row["created_at"]), update_time=timestamp(row["updated_at"]),
        delete_time=timestamp(row["deleted_at"]), etag=etag(row["version"]),
        formal_salutation=formal, informal_salutation=informal,
    )


def _date(value):
    from datetime import date

    return date.fromisoformat(value) if isinstance(value, str) else value


class DonorServicer(donor_service_pb2_grpc.DonorServiceServicer):
    def __init__(self, db: Database, reads: ReadAudit):
        self.db = db
        self.reads = reads

    async def CreateDonor(self, request: pb.CreateDonorRequest, ctx) -> pb.CreateDonorResponse:
        row = await handlers.create_donor(self.db, context.current().tenant_id, fields_from_proto(request.donor),
                                          request.request_id)
        return pb.CreateDonorResponse(donor=donor_to_proto(row))

    async def GetDonor(self, request: pb.GetDonorRequest, ctx) -> pb.GetDonorResponse:
        row = await handlers.get_donor(self.db, self.reads, context.current().tenant_id, request.id)
        return pb.GetDonorResponse(donor=donor_to_proto(row))

    async def ListDonors(self, request: pb.ListDonorsRequest, ctx) -> pb.ListDonorsResponse:
        rows, token = await handlers.list_donors(self.db, self.reads, context.current().tenant_id, handlers.ListDonors(
            page_size=request.page_size, page_token=request.page_token, journey_stage=request.journey_stage,
            tag=request.tag, email=request.email, order_by=request.order_by))
        return pb.ListDonorsResponse(donors=[donor_to_proto(r) for r in rows], next_page_token=token)

    async def UpdateDonor(self, request: pb.UpdateDonorRequest, ctx) -> pb.UpdateDonorResponse:
        row = await handlers.update_donor(self.db, context.current().tenant_id, request.donor.id,
                                          request.donor.etag, fields_from_proto(request.donor),
                                          list(request.update_mask.paths))
        return pb.UpdateDonorResponse(donor=donor_to_proto(row))

    async def DeleteDonor(self, request: pb.DeleteDonorRequest, ctx) -> pb.DeleteDonorResponse:
        row = await handlers.delete_donor(self.db, context.current().tenant_id, request.id, request.etag)
        return pb.DeleteDonorResponse(donor=donor_to_proto(row))

    async def SearchDonors(self, request: pb.SearchDonorsRequest, ctx) -> pb.SearchDonorsResponse:
        rows, token = await matching.search_donors(self.db, self.reads, context.current().tenant_id, request.query,
                                                   request.page_size, request.page_token)
        return pb.SearchDonorsResponse(
            results=[pb.DonorSearchResult(donor=donor_to_proto(r), score=r["score"]) for r in rows],
            next_page_token=token)

    async def FindDuplicateDonors(self, request: pb.FindDuplicateDonorsRequest,
                                  ctx) -> pb.FindDuplicateDonorsResponse:
        pairs, token = await matching.find_duplicates(self.db, self.reads, context.current().tenant_id,
                                                      request.donor_id, request.page_size, request.page_token)
        return pb.FindDuplicateDonorsResponse(pairs=[
            pb.DuplicateDonorPair(donor=donor_to_proto(p.donor), duplicate=donor_to_proto(p.duplicate),
                                  score=p.score, reasons=[_REASON_OUT[r] for r in p.reasons])
            for p in pairs], next_page_token=token)

    async def MergeDonors(self, request: pb.MergeDonorsRequest, ctx) -> pb.MergeDonorsResponse:
        result = await matching.merge_donors(self.db, context.current().tenant_id, request.survivor_id,
                                             request.merged_id, request.survivor_etag, request.merged_etag)
        return pb.MergeDonorsResponse(survivor=donor_to_proto(result.survivor),
                                      moved_donation_count=result.moved_donations)

    async def RestoreDonor(self, request: pb.RestoreDonorRequest, ctx) -> pb.RestoreDonorResponse:
        row = await handlers.restore_donor(self.db, context.current().tenant_id, request.id, request.etag)
        return pb.RestoreDonorResponse(donor=donor_to_proto(row))

    async def ImportDonors(self, requests, ctx):
        async for response in donor_transfer.import_donors(self.db, requests):
            yield response

    async def ExportDonors(self, request: pb.ExportDonorsRequest, ctx):
        async for response in donor_transfer.export_donors(self.db, self.reads, request):
            yield response
