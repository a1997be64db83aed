"""Small helpers the tests share: building requests and reading rich error details."""

from __future__ import annotations

import json

import grpc
import pytest
from givance.crm.v1 import donation_pb2, donation_service_pb2, donor_pb2, donor_service_pb2
from google.rpc import error_details_pb2, status_pb2
from google.type import date_pb2, money_pb2


def field_violations(err: grpc.aio.AioRpcError) -> dict[str, str]:
    """field -> description, from the google.rpc.BadRequest detail of an error."""
    for key, value in err.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            out = {}
            for detail in status.details:
                if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    bad = error_details_pb2.BadRequest()
                    detail.Unpack(bad)
                    out.update({v.field: v.description for v in bad.field_violations})
            return out
    return {}


def error_reason(err: grpc.aio.AioRpcError) -> str:
    for key, value in err.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                    return info.reason
    return ""


def usd(units: int, nanos: int = 0, currency: str = "USD") -> money_pb2.Money:
    return money_pb2.Money(currency_code=currency, units=units, nanos=nanos)


def day(y: int = 2026, m: int = 11, d: int = 1) -> date_pb2.Date:
    return date_pb2.Date(year=y, month=m, day=d)


def new_donor(**kw) -> donor_service_pb2.CreateDonorRequest:
    request_id = kw.pop("request_id", "")
    kw.setdefault("first_name", "Ada")
    kw.setdefault("last_name", "Lovelace")
    return donor_service_pb2.CreateDonorRequest(donor=donor_pb2.Donor(**kw), request_id=request_id)


def gift(donor_id: str, amount=None, request_id: str = "", **kw) -> donation_service_pb2.RecordDonationRequest:
    kw.setdefault("date", day())
    kw.setdefault("payment_method", donation_pb2.PAYMENT_METHOD_CHECK)
    return donation_service_pb2.RecordDonationRequest(
        donation=donation_pb2.Donation(donor_id=donor_id, amount=amount or usd(100), **kw), request_id=request_id)


async def fails(call, code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    """Await a call that must fail with `code`; return the error."""
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await call
    assert e.value.code() == code, e.value.details()
    return e.value


async def invalid(call, field: str) -> grpc.aio.AioRpcError:
    """Await a call that must be INVALID_ARGUMENT with a field violation naming `field`."""
    err = await fails(call, grpc.StatusCode.INVALID_ARGUMENT)
    violations = field_violations(err)
    assert field in violations, violations
    return err


def _plan_tree(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_tree(child)


async def plan_nodes(uow, sql: str, params: dict, off: tuple[str, ...] = ("enable_seqscan",)) -> list[dict]:
    """Every node of the plan of `sql` in this unit of work (as its service role, under its
    tenant), with the planner's `off` methods priced out (a tiny test table would otherwise be
    read whole): a Seq Scan that still shows means no index could serve the query."""
    from sqlalchemy import text

    from chassis.db import compile_sql

    for setting in off:
        await uow.conn.execute(text(f"SET LOCAL {setting} = off"))
    await uow.conn.execute(text("SELECT set_config('pg_trgm.similarity_threshold', '0.5', true)"))
    compiled, names = compile_sql(text(f"EXPLAIN (FORMAT JSON) {sql}"))
    raw = await uow.conn.raw.fetchval(compiled, *(params[n] for n in names))
    return list(_plan_tree((json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]))
