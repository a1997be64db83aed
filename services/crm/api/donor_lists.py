"""DonorListService: proto in, handler call, proto out."""

from __future__ import annotations

from decimal import Decimal

from givance.crm.v1 import donor_list_pb2, donor_list_service_pb2_grpc
from givance.crm.v1 import donor_list_service_pb2 as pb
from google.type import money_pb2

from chassis import context
from chassis.audit import ReadAudit
from chassis.convert import date as date_pb
from chassis.convert import from_date, from_money, money, timestamp
from chassis.db import Database
from chassis.resource import etag
from services.crm.api.donor_messages import donor_to_proto
from services.crm.handlers import donor_lists as handlers
from services.crm.handlers.donor_lists import DonorList, ListFields, ListFilter, Money

_TYPE_IN = {donor_list_pb2.DONOR_LIST_TYPE_UNSPECIFIED: None, donor_list_pb2.DONOR_LIST_TYPE_STATIC: "static",
            donor_list_pb2.DONOR_LIST_TYPE_DYNAMIC: "dynamic"}
_TYPE_OUT = {v: k for k, v in _TYPE_IN.items() if v}


def _money_in(m: money_pb2.Money, path: str, problems: list) -> Money:
    try:
        return Money(amount=from_money(m), currency=m.currency_code)
    except ValueError as exc:
        problems.append((path, str(exc)))
        return Money(amount=None, currency=m.currency_code)


def filter_from_proto(p: donor_list_pb2.DonorListFilter) -> ListFilter:
    f = ListFilter(journey_stages=list(p.journey_stages), tags=list(p.tags), city=p.city, state=p.state,
                         country=p.country, custom_fields=[(c.key, c.value) for c in p.custom_fields])
    for attr in ("min_lifetime_giving", "max_lifetime_giving"):
        if p.HasField(attr):
            setattr(f, attr, _money_in(getattr(p, attr), attr, f.problems))
    for attr in ("last_gift_before", "last_gift_after"):
        if p.HasField(attr):
            try:
                setattr(f, attr, from_date(getattr(p, attr)))
            except ValueError as exc:
                f.problems.append((attr, f"is not a valid date: {exc}"))
    return f


def fields_from_proto(p: donor_list_pb2.DonorList) -> ListFields:
    f = ListFields(name=p.name, description=p.description,
                         filter=filter_from_proto(p.filter) if p.HasField("filter") else None)
    f.type = _TYPE_IN.get(p.type, str(p.type))  # an unknown number is reported by the rules
    return f


def _filter_to_proto(filters: dict) -> donor_list_pb2.DonorListFilter:
    out = donor_list_pb2.DonorListFilter(
        journey_stages=filters.get("journey_stages", []), tags=filters.get("tags", []),
        city=filters.get("city", ""), state=filters.get("state", ""), country=filters.get("country", ""),
        custom_fields=[donor_list_pb2.CustomFieldEquals(key=c["key"], value=c["value"])
                       for c in filters.get("custom_fields", [])],
    )
    for key in ("min_lifetime_giving", "max_lifetime_giving"):
        if m := filters.get(key):
            getattr(out, key).CopyFrom(money(Decimal(m["amount"]), m["currency"]))
    for key in ("last_gift_before", "last_gift_after"):
        if value := filters.get(key):
            from datetime import date

            getattr(out, key).CopyFrom(date_pb(date.fromisoformat(value)))
    return out


def list_to_proto(row: DonorList) -> donor_list_pb2.DonorList:
    return donor_list_pb2.DonorList(
        id=str(row.id), organization_id=str(row.organization_id), name=row.name,
        description=row.description or "", type=_TYPE_OUT[row.type],
        filter=_filter_to_proto(row.filters or {}) if row.type == "dynamic" else None,
        donor_count=row.donor_count, create_time=timestamp(row.created_at),
        update_time=timestamp(row.updated_at), delete_time=timestamp(row.deleted_at),
        etag=etag(row.version),
    )


def _principal_id() -> str | None:
    principal = context.current().principal
    return principal.subject if principal else None


class DonorListServicer(donor_list_service_pb2_grpc.DonorListServiceServicer):
    def __init__(self, db: Database, reads: ReadAudit):
        self.db = db
        self.reads = reads

    async def CreateDonorList(self, request: pb.CreateDonorListRequest, ctx) -> pb.CreateDonorListResponse:
        row = await handlers.create_list(self.db, context.current().tenant_id, fields_from_proto(request.donor_list),
                                         request.request_id, _principal_id())
        return pb.CreateDonorListResponse(donor_list=list_to_proto(row))

    async def GetDonorList(self, request: pb.GetDonorListRequest, ctx) -> pb.GetDonorListResponse:
        row = await handlers.get_list(self.db, context.current().tenant_id, request.id)
        return pb.GetDonorListResponse(donor_list=list_to_proto(row))

    async def ListDonorLists(self, request: pb.ListDonorListsRequest, ctx) -> pb.ListDonorListsResponse:
        rows, token = await handlers.list_lists(self.db, context.current().tenant_id, request.page_size,
                                                request.page_token)
        return pb.ListDonorListsResponse(donor_lists=[list_to_proto(r) for r in rows], next_page_token=token)

    async def UpdateDonorList(self, request: pb.UpdateDonorListRequest, ctx) -> pb.UpdateDonorListResponse:
        row = await handlers.update_list(self.db, context.current().tenant_id, request.donor_list.id,
                                         request.donor_list.etag, fields_from_proto(request.donor_list),
                                         list(request.update_mask.paths))
        return pb.UpdateDonorListResponse(donor_list=list_to_proto(row))

    async def DeleteDonorList(self, request: pb.DeleteDonorListRequest, ctx) -> pb.DeleteDonorListResponse:
        row = await handlers.delete_list(self.db, context.current().tenant_id, request.id, request.etag)
        return pb.DeleteDonorListResponse(donor_list=list_to_proto(row))

    async def AddDonorListMembers(self, request: pb.AddDonorListMembersRequest,
                                  ctx) -> pb.AddDonorListMembersResponse:
        row, added = await handlers.add_members(self.db, context.current().tenant_id, request.list_id,
                                                list(request.donor_ids), _principal_id())
        return pb.AddDonorListMembersResponse(donor_list=list_to_proto(row), added_count=added)

    async def RemoveDonorListMembers(self, request: pb.RemoveDonorListMembersRequest,
                                     ctx) -> pb.RemoveDonorListMembersResponse:
        row, removed = await handlers.remove_members(self.db, context.current().tenant_id, request.list_id,
                                                     list(request.donor_ids))
        return pb.RemoveDonorListMembersResponse(donor_list=list_to_proto(row), removed_count=removed)

    async def ListDonorListMembers(self, request: pb.ListDonorListMembersRequest,
                                   ctx) -> pb.ListDonorListMembersResponse:
        rows, token = await handlers.list_members(self.db, self.reads, context.current().tenant_id, request.list_id,
                                                  request.page_size, request.page_token)
        return pb.ListDonorListMembersResponse(donors=[donor_to_proto(r) for r in rows], next_page_token=token)
