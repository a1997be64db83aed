"""DonorService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.crm.v1 import donor_service_pb2 as pb
from givance.crm.v1 import donor_service_pb2_grpc

from chassis import context
from chassis.audit import ReadAudit
from chassis.db import Database
from services.crm.api import donor_transfer
from services.crm.api.donor_messages import donor_to_proto, fields_from_proto
from services.crm.handlers import donor_matching as matching
from services.crm.handlers import donors as handlers

_REASON_OUT = {"same_email": pb.DUPLICATE_REASON_SAME_EMAIL, "same_phone": pb.DUPLICATE_REASON_SAME_PHONE,
               "similar_name_same_address": pb.DUPLICATE_REASON_SIMILAR_NAME_SAME_ADDRESS}


class DonorServicer(donor_service_pb2_grpc.DonorServiceServicer):
    def __init__(self, db: Database, reads: ReadAudit, *, stream_idle_seconds: float = 60.0):
        self.db = db
        self.reads = reads
        self.stream_idle_seconds = stream_idle_seconds

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
            results=[pb.DonorSearchResult(donor=donor_to_proto(r), score=r.score) for r in rows],
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
        async for response in donor_transfer.import_donors(self.db, requests, idle_seconds=self.stream_idle_seconds):
            yield response

    async def ExportDonors(self, request: pb.ExportDonorsRequest, ctx):
        async for response in donor_transfer.export_donors(self.db, self.reads, request):
            yield response
