"""DonorService's bulk methods: ImportDonors and ExportDonors, proto in and out.

The stream of ImportDonorsRequest becomes ImportRows (Donor messages translated like
CreateDonor's, CSV chunks read by the import's CsvReader); the handler's progress becomes
ImportDonorsResponse. Export rows become Donor messages (with giving totals) or CSV chunks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from givance.crm.v1 import donor_pb2
from givance.crm.v1 import donor_service_pb2 as pb

from chassis import context, inputs, streams
from chassis.audit import ReadAudit
from chassis.db import Database
from chassis.errors import InvalidArgument
from services.crm.api import donor_messages
from services.crm.handlers import donor_export, donor_import
from services.crm.handlers.donor_import import CsvReader, ImportRow, Rejection


def _donor_row(number: int, donor: donor_pb2.Donor) -> ImportRow:
    try:
        inputs.check(donor)  # hostile values (NUL, out-of-range times): this row's problem alone
        return ImportRow(number, donor_messages.fields_from_proto(donor), size=donor.ByteSize())
    except InvalidArgument as err:  # an unknown type: this row's problem, not the stream's
        return ImportRow(number, None, [(f.removeprefix("donor."), d) for f, d in err.violations],
                         size=donor.ByteSize())


async def _rows(requests: AsyncIterator[pb.ImportDonorsRequest]) -> AsyncIterator[ImportRow]:
    kind = None
    number = 0
    csv: CsvReader | None = None
    async for request in requests:
        which = request.WhichOneof("payload")
        if which is None:
            continue
        if kind is None:
            kind = which
        elif which != kind:
            raise InvalidArgument.field(which, f"one import stream carries rows or csv_chunk, not both ({kind} came "
                                               "first)")
        if which == "rows":
            for donor in request.rows.donors:
                number += 1
                yield _donor_row(number, donor)
        else:
            csv = csv or CsvReader()
            for row in csv.feed(request.csv_chunk):
                yield row
    if csv is not None:
        for row in csv.close():
            yield row


def _rejection(r: Rejection) -> pb.ImportRejection:
    return pb.ImportRejection(row_number=r.number, external_id=r.external_id, violations=[
        pb.ImportViolation(field=f, description=d) for f, d in r.violations])


async def import_donors(db: Database, requests: AsyncIterator[pb.ImportDonorsRequest], *,
                        idle_seconds: float = 60.0) -> AsyncIterator[pb.ImportDonorsResponse]:
    rows = _rows(streams.idle_limited(requests, idle_seconds))
    async for p in donor_import.import_donors(db, context.current().tenant_id, rows):
        yield pb.ImportDonorsResponse(rows_read=p.rows_read, created=p.created, updated=p.updated,
                                      rejected=p.rejected, rejections=[_rejection(r) for r in p.rejections],
                                      done=p.done)


async def export_donors(db: Database, reads: ReadAudit, request: pb.ExportDonorsRequest
                        ) -> AsyncIterator[pb.ExportDonorsResponse]:
    if request.format not in (pb.EXPORT_FORMAT_UNSPECIFIED, pb.EXPORT_FORMAT_DONORS, pb.EXPORT_FORMAT_CSV):
        raise InvalidArgument.field("format", f"unknown export format {request.format}")
    as_csv = request.format == pb.EXPORT_FORMAT_CSV
    q = donor_export.ExportDonors(chunk_size=request.chunk_size, journey_stage=request.journey_stage,
                                  tag=request.tag, with_giving=not as_csv)
    first = True
    async for rows in donor_export.export_donors(db, reads, context.current().tenant_id, q):
        if as_csv:
            yield pb.ExportDonorsResponse(csv_chunk=donor_export.csv_text(rows, header=first).encode())
        else:
            yield pb.ExportDonorsResponse(donors=[donor_messages.donor_to_proto(r) for r in rows])
        first = False
    if as_csv and first:  # no donor: the header alone, so the export still re-imports
        yield pb.ExportDonorsResponse(csv_chunk=donor_export.csv_text([], header=True).encode())
