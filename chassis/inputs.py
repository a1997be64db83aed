"""Hostile values stop at the edge: every request message is checked before a handler sees it.

What no field of any Givance API may hold, whatever its own rules: a NUL character in a string
(PostgreSQL's text cannot store it), a float that is not finite, a Timestamp or Duration outside
the range the well-known types define, a google.type.Date or Money with out-of-range parts.
Each is INVALID_ARGUMENT naming the field path (`donor.tags[2]`), so these never reach SQL or
datetime conversion as INTERNAL. Field-specific rules (lengths, formats) stay in the domain.
"""

from __future__ import annotations

import math

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from chassis.errors import InvalidArgument

# google.protobuf.Timestamp: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999999Z
_MIN_SECONDS = -62135596800
_MAX_SECONDS = 253402300799
_MAX_DURATION_SECONDS = 315576000000
_NANOS = 1_000_000_000
_FLOATS = (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT)
MAX_VIOLATIONS = 20  # a request full of bad values is named by its first ones



def _repeated(fd: FieldDescriptor) -> bool:
    flag = getattr(fd, "is_repeated", None)  # protobuf 6; label is deprecated there
    return bool(flag) if flag is not None else fd.label == FieldDescriptor.LABEL_REPEATED

def check(message: Message, prefix: str = "") -> None:
    """Raise InvalidArgument with every hostile value found in `message` (up to MAX_VIOLATIONS)."""
    found: list[tuple[str, str]] = []
    _walk(message, prefix, found)
    if found:
        raise InvalidArgument(found[:MAX_VIOLATIONS])


def _walk(message: Message, prefix: str, found: list[tuple[str, str]]) -> None:
    special = _SPECIAL.get(message.DESCRIPTOR.full_name)
    if special is not None:
        problem = special(message)
        if problem:
            found.append((prefix or message.DESCRIPTOR.name, problem))
        return
    for fd, value in message.ListFields():
        path = f"{prefix}.{fd.name}" if prefix else fd.name
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            value_fd = fd.message_type.fields_by_name["value"]
            for key, item in value.items():
                item_path = f"{path}[{key!r}]" if isinstance(key, str) else f"{path}[{key}]"
                if isinstance(key, str) and "\x00" in key:
                    found.append((path, "must not contain NUL characters"))
                _value(value_fd, item, item_path, found)
        elif _repeated(fd):
            for i, item in enumerate(value):
                _value(fd, item, f"{path}[{i}]", found)
        else:
            _value(fd, value, path, found)
        if len(found) >= MAX_VIOLATIONS:
            return


def _value(fd: FieldDescriptor, value, path: str, found: list[tuple[str, str]]) -> None:
    if fd.type == FieldDescriptor.TYPE_MESSAGE:
        _walk(value, path, found)
    elif fd.type == FieldDescriptor.TYPE_STRING:
        if "\x00" in value:
            found.append((path, "must not contain NUL characters"))
    elif fd.type in _FLOATS and not math.isfinite(value):
        found.append((path, "must be a finite number"))


def _timestamp(ts) -> str:
    if not _MIN_SECONDS <= ts.seconds <= _MAX_SECONDS or not 0 <= ts.nanos < _NANOS:
        return "must be a time between the years 1 and 9999 with nanos in [0, 1e9)"
    return ""


def _duration(d) -> str:
    if abs(d.seconds) > _MAX_DURATION_SECONDS or abs(d.nanos) >= _NANOS or d.seconds * d.nanos < 0:
        return "is not a valid duration"
    return ""


def _date(d) -> str:
    if not (0 <= d.year <= 9999 and 0 <= d.month <= 12 and 0 <= d.day <= 31):
        return "must have a year in [0, 9999], a month in [0, 12] and a day in [0, 31]"
    return ""


def _money(m) -> str:
    if "\x00" in m.currency_code:
        return "must not contain NUL characters"
    if abs(m.nanos) >= _NANOS or (m.units > 0 and m.nanos < 0) or (m.units < 0 and m.nanos > 0):
        return "must have nanos in (-1e9, 1e9) with the sign of units"
    return ""


def _any(a) -> str:
    return "must not contain NUL characters" if "\x00" in a.type_url else ""


def _struct_value(v) -> str:
    kind = v.WhichOneof("kind")
    if kind == "string_value" and "\x00" in v.string_value:
        return "must not contain NUL characters"
    if kind == "number_value" and not math.isfinite(v.number_value):
        return "must be a finite number"
    if kind == "struct_value":
        return _struct(v.struct_value)
    if kind == "list_value":
        return next((p for p in map(_struct_value, v.list_value.values) if p), "")
    return ""


def _struct(s) -> str:
    for key, v in s.fields.items():
        if "\x00" in key:
            return "must not contain NUL characters"
        problem = _struct_value(v)
        if problem:
            return problem
    return ""


_SPECIAL = {
    "google.protobuf.Timestamp": _timestamp,
    "google.protobuf.Duration": _duration,
    "google.type.Date": _date,
    "google.type.Money": _money,
    "google.protobuf.Any": _any,
    "google.protobuf.Struct": _struct,
    "google.protobuf.Value": _struct_value,
}
