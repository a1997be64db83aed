"""AuditService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.identity.v1 import audit_service_pb2 as pb
from givance.identity.v1 import audit_service_pb2_grpc
from google.protobuf import struct_pb2

from chassis.convert import from_timestamp, timestamp
from chassis.errors import Violations
from services.identity.api.caller import caller
from services.identity.handlers import audit as handlers
from services.identity.handlers import platform
from services.identity.handlers.audit import ActivityEntry
from services.identity.handlers.deps import Deps
from services.identity.handlers.platform import PlatformEntry

# google.protobuf.Timestamp's valid range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
_MIN_SECONDS = -62_135_596_800
_MAX_SECONDS = 253_402_300_799


def _struct(value: dict | None) -> struct_pb2.Struct | None:
    if value is None:
        return None
    s = struct_pb2.Struct()
    s.update(value)
    return s


def entry_to_proto(row: ActivityEntry) -> pb.ActivityEntry:
    return pb.ActivityEntry(
        id=str(row.id), occur_time=timestamp(row.occurred_at), actor_id=row.actor_id,
        actor_kind=row.actor_kind, action=row.action, resource_type=row.resource_type,
        resource_id=row.resource_id, before=_struct(row.before), after=_struct(row.after),
        ip_address=row.ip_address or "", request_id=row.request_id or "", service=row.service,
    )


def platform_entry_to_proto(row: PlatformEntry) -> pb.PlatformActivityEntry:
    return pb.PlatformActivityEntry(
        id=str(row.id), occur_time=timestamp(row.occurred_at), actor=row.actor, action=row.action,
        resource_type=row.resource_type, resource_id=row.resource_id,
        organization_id=str(row.organization_id) if row.organization_id else "", detail=_struct(row.detail),
        request_id=row.request_id, ip_address=row.ip_address,
    )


class AuditServicer(audit_service_pb2_grpc.AuditServiceServicer):
    def __init__(self, deps: Deps):
        self.deps = deps

    async def ListActivity(self, request: pb.ListActivityRequest, ctx) -> pb.ListActivityResponse:
        v = Violations()
        times = {}
        for field in ("start_time", "end_time"):
            times[field] = None
            if request.HasField(field):
                ts = getattr(request, field)
                if not (_MIN_SECONDS <= ts.seconds <= _MAX_SECONDS and 0 <= ts.nanos <= 999_999_999):
                    v.add(field, "is not a valid timestamp (years 1 to 9999, nanos 0 to 999,999,999)")
                else:
                    times[field] = from_timestamp(ts)
        v.raise_if_any()
        rows, token = await handlers.list_activity(self.deps.db, caller()[1], handlers.ListActivity(
            page_size=request.page_size, page_token=request.page_token, actor_id=request.actor_id,
            action=request.action, resource_type=request.resource_type, resource_id=request.resource_id,
            start_time=times["start_time"], end_time=times["end_time"]))
        return pb.ListActivityResponse(entries=[entry_to_proto(r) for r in rows], next_page_token=token)

    async def ListPlatformActivity(self, request: pb.ListPlatformActivityRequest,
                                   ctx) -> pb.ListPlatformActivityResponse:
        rows, token = await platform.list_activity(self.deps.db, caller()[0], request.page_size, request.page_token,
                                                   request.action)
        return pb.ListPlatformActivityResponse(entries=[platform_entry_to_proto(r) for r in rows],
                                               next_page_token=token)
