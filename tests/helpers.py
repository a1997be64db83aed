"""Small helpers the tests share: waiting for an effect (`eventually`), asserting a refused
call (`fails`, `invalid`), building requests and reading rich error details."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from givance.crm.v1 import donation_pb2, donation_service_pb2, donor_pb2, donor_service_pb2
from google.rpc import error_details_pb2, status_pb2
from google.type import date_pb2, money_pb2

# One budget for every effect that crosses the bus or another task. Generous on purpose: a
# healthy run sees these conditions within a fraction of a second, so the budget only bounds
# how long a broken run takes to say so. 60 s: the suite's five services, their consumers and
# the load client share two cores, and a loaded CI run once took longer than 20 s to drain a queue.
EVENTUALLY_TIMEOUT = 60.0


async def eventually(predicate: Callable[[], Any], *, timeout: float = EVENTUALLY_TIMEOUT, interval: float = 0.05,
                     what: str = "the condition") -> Any:
    """Poll `predicate` (sync or async) until it returns something truthy; return that value.
    The way to wait in a test: on the real condition, never a fixed sleep."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"gave up after {timeout:.0f}s waiting for {what} (last: {result!r})")
        await asyncio.sleep(interval)


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


async def fails(call, code: grpc.StatusCode | None = None) -> grpc.aio.AioRpcError:
    """Await a call that must fail (with `code`, when given); return the error."""
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await call
    if code is not None:
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


def comms_opens(event_type: str, aggregate_id: str, sealed: str) -> str:
    """A link or code identity sealed in an event, opened the way comms does (the development
    event-secret keys the tests run with)."""
    from chassis.crypto import DEV_EVENT_SECRET_KEYS, Keyring, open_event_secret

    return open_event_secret(Keyring(DEV_EVENT_SECRET_KEYS), event_type, aggregate_id, sealed)
