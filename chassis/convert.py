"""Conversions between protobuf well-known / google.type messages and Python values.

Exact: money becomes Decimal from units and nanos, never a float.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import TypeVar

from google.protobuf import timestamp_pb2
from google.type import date_pb2, money_pb2

from chassis.errors import Violations

T = TypeVar("T")

NANOS = Decimal(1_000_000_000)


def timestamp(value: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


def from_timestamp(ts: timestamp_pb2.Timestamp) -> dt.datetime:
    return ts.ToDatetime(tzinfo=dt.UTC)


def date(value: dt.date | None) -> date_pb2.Date | None:
    if value is None:
        return None
    return date_pb2.Date(year=value.year, month=value.month, day=value.day)


def from_date(d: date_pb2.Date) -> dt.date:
    """Raises ValueError for an incomplete or impossible date."""
    return dt.date(d.year, d.month, d.day)


def date_field(msg, name: str, violations: Violations, *, path: str | None = None,
               required: bool = False) -> dt.date | None:
    """The google.type.Date field `name` of `msg`, or None when unset; an unset required field
    or an impossible date is a violation named `path` (default: the field's name)."""
    path = path or name
    if not msg.HasField(name):
        if required:
            violations.add(path, "is required")
        return None
    try:
        return from_date(getattr(msg, name))
    except ValueError as exc:
        violations.add(path, f"is not a valid date: {exc}")
        return None


def money_field(msg, name: str, violations: Violations, *, path: str | None = None,
                required: bool = False) -> Decimal | None:
    """The google.type.Money field `name` of `msg` as a Decimal, or None when unset; an unset
    required field or an inconsistent amount is a violation named `path` (default: the field's name)."""
    path = path or name
    if not msg.HasField(name):
        if required:
            violations.add(path, "is required")
        return None
    try:
        return from_money(getattr(msg, name))
    except ValueError as exc:
        violations.add(path, str(exc))
        return None


def money(amount: Decimal, currency: str) -> money_pb2.Money:
    units = int(amount)  # truncates toward zero, like Money wants
    nanos = int((amount - units) * NANOS)
    return money_pb2.Money(currency_code=currency, units=units, nanos=nanos)


def from_money(m: money_pb2.Money) -> Decimal:
    """Raises ValueError when units and nanos disagree in sign or nanos is out of range."""
    if not -999_999_999 <= m.nanos <= 999_999_999:
        raise ValueError("nanos must be within ±999,999,999")
    if (m.units > 0 and m.nanos < 0) or (m.units < 0 and m.nanos > 0):
        raise ValueError("units and nanos must have the same sign")
    return Decimal(m.units) + Decimal(m.nanos) / NANOS


def enum_in(value: int, table: Mapping[int, T], problems: dict[str, tuple[str, str]], attr: str,
            path: str) -> T | None:
    """A proto enum's number as its plain value by `table`; an unknown number is None, noted in
    `problems` (attr -> (path, description)) for the handler to report with the other fields."""
    if value in table:
        return table[value]
    problems[attr] = (path, f"unknown {attr} {value}")
    return None
