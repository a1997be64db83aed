"""AuditService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.identity.v1 import audit_service_pb2 as pb
from givance.identity.v1 import audit_service_pb2_grpc
from google.protobuf import struct_pb2

from chassis import context
from chassis.convert import from_timestamp, timestamp
from chassis.errors import Violations
from services.identity.handlers import audit as handlers
from services.identity.handlers.deps import Deps

# google.protobuf.Timestamp's valid range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
_MIN_SECONDS = -62_135_596_800
_MAX_SECONDS = 253_402_300_799


def _struct(value: dict | None) -> struct_pb2.Struct | None:
    if value is None:
        return None
    s = struct_pb2.Struct()
    s.update(value)
    return s


def entry_to_proto(row: dict) -> pb.ActivityEntry:
    return pb.ActivityEntry(
        id=str(row["id"]), occur_time=timestamp(row["occurred_at"]), actor_id=row["actor_id"],
        actor_kind=row["actor_kind"], action=row["action"], resource_type=row["resource_type"],
        resource_id=row["resource_id"], before=_struct(row["before"]), after=_struct(row["after"]),
        ip_address=row["ip_address"] or "", request_id=row["request_id"] or "", service=row["service"],
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
        rows, token = await handlers.list_activity(self.deps.db, context.current().tenant_id, handlers.ListActivity(
            page_size=request.page_size, page_token=request.page_token, actor_id=request.actor_id,
            action=request.action, resource_type=request.resource_type, resource_id=request.resource_id,
            start_time=times["start_time"], end_time=times["end_time"]))
        return pb.ListActivityResponse(entries=[entry_to_proto(r) for r in rows], next_page_token=token)
