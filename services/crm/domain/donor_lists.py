"""Donor list rules: what a valid list and a valid dynamic filter hold, and member batches."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from chassis.errors import FailedPrecondition, Violations

STATIC = "static"
DYNAMIC = "dynamic"
TYPES = (STATIC, DYNAMIC)
MAX_NAME = 200
MAX_DESCRIPTION = 20_000
MAX_MEMBERS_PER_CALL = 1000
MAX_FILTER_VALUES = 100
MAX_TEXT = 200
MAX_AMOUNT = Decimal("9999999999.99")
_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
_COUNTRY_RE = re.compile(r"^[A-Z]{2}$")

# UpdateDonorList field-mask paths.
PATHS = ("name", "description", "filter")
# What an empty mask updates: a static list has no filter.
DEFAULT_PATHS = {STATIC: ("name", "description"), DYNAMIC: PATHS}


@dataclass
class Money:
    amount: Decimal | None
    currency: str


@dataclass
class ListFilter:
    """A dynamic list's criteria as plain values; `problems` holds what could not even be read
    (an impossible date, malformed money), as (field path suffix, description)."""

    journey_stages: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    min_lifetime_giving: Money | None = None
    max_lifetime_giving: Money | None = None
    last_gift_before: date | None = None
    last_gift_after: date | None = None
    city: str = ""
    state: str = ""
    country: str = ""
    custom_fields: list[tuple[str, str]] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class ListFields:
    name: str = ""
    description: str | None = None
    type: str | None = None  # None: unspecified
    filter: ListFilter | None = None  # None: not set


def check_name(name: str, path: str, v: Violations) -> str:
    clean = " ".join((name or "").split())
    if not clean:
        v.add(path, "is required")
    elif len(clean) > MAX_NAME:
        v.add(path, f"must be at most {MAX_NAME} characters")
    return clean


def check_description(description: str | None, path: str, v: Violations) -> str | None:
    clean = (description or "").strip() or None
    if clean and len(clean) > MAX_DESCRIPTION:
        v.add(path, f"must be at most {MAX_DESCRIPTION} characters")
    return clean


def _texts(values: list[str], path: str, v: Violations) -> list[str]:
    if len(values) > MAX_FILTER_VALUES:
        v.add(path, f"must hold at most {MAX_FILTER_VALUES} values")
    out: list[str] = []
    for i, value in enumerate(values):
        clean = (value or "").strip()
        if not clean:
            v.add(f"{path}[{i}]", "must not be empty")
        elif len(clean) > MAX_TEXT:
            v.add(f"{path}[{i}]", f"must be at most {MAX_TEXT} characters")
        elif clean not in out:
            out.append(clean)
    return out


def _money(m: Money | None, path: str, v: Violations) -> dict[str, str] | None:
    if m is None:
        return None
    if not _CURRENCY_RE.match(m.currency or ""):
        v.add(f"{path}.currency_code", "must be a three-letter ISO 4217 code such as USD")
    if m.amount is None:
        return None
    if m.amount < 0:
        v.add(path, "must not be negative")
    elif m.amount > MAX_AMOUNT:
        v.add(path, f"must be at most {MAX_AMOUNT}")
    elif m.amount != m.amount.quantize(Decimal("0.01")):
        v.add(path, "must have at most two decimal places")
    return {"currency": m.currency, "amount": str(m.amount)}


def normalize_filter(f: ListFilter, prefix: str, v: Violations) -> dict[str, Any]:
    """The filter as stored (JSON-ready, only the criteria set), every problem reported under prefix."""
    p = f"{prefix}."
    for path, description in f.problems:
        v.add(f"{p}{path}", description)
    out: dict[str, Any] = {}
    if stages := _texts(f.journey_stages, f"{p}journey_stages", v):
        out["journey_stages"] = stages
    if tags := _texts(f.tags, f"{p}tags", v):
        out["tags"] = tags
    low = _money(f.min_lifetime_giving, f"{p}min_lifetime_giving", v)
    high = _money(f.max_lifetime_giving, f"{p}max_lifetime_giving", v)
    if low:
        out["min_lifetime_giving"] = low
    if high:
        out["max_lifetime_giving"] = high
    if (low and high and low["currency"] == high["currency"]
            and Decimal(low["amount"]) > Decimal(high["amount"])):
        v.add(f"{p}max_lifetime_giving", "must not be less than min_lifetime_giving")
    if f.last_gift_before:
        out["last_gift_before"] = f.last_gift_before.isoformat()
    if f.last_gift_after:
        out["last_gift_after"] = f.last_gift_after.isoformat()
    if f.last_gift_before and f.last_gift_after and f.last_gift_after >= f.last_gift_before:
        v.add(f"{p}last_gift_after", "must be before last_gift_before (no date could match)")
    for attr in ("city", "state"):
        value = " ".join((getattr(f, attr) or "").split())
        if len(value) > MAX_TEXT:
            v.add(f"{p}{attr}", f"must be at most {MAX_TEXT} characters")
        elif value:
            out[attr] = value
    country = (f.country or "").strip().upper()
    if country:
        if not _COUNTRY_RE.match(country):
            v.add(f"{p}country", "must be an ISO 3166-1 alpha-2 code such as US")
        out["country"] = country
    if len(f.custom_fields) > MAX_FILTER_VALUES:
        v.add(f"{p}custom_fields", f"must hold at most {MAX_FILTER_VALUES} entries")
    custom = []
    for i, (key, value) in enumerate(f.custom_fields):
        key = (key or "").strip()
        if not key:
            v.add(f"{p}custom_fields[{i}].key", "is required")
        elif len(key) > 100:
            v.add(f"{p}custom_fields[{i}].key", "must be at most 100 characters")
        elif len(value or "") > MAX_TEXT:
            v.add(f"{p}custom_fields[{i}].value", f"must be at most {MAX_TEXT} characters")
        else:
            custom.append({"key": key, "value": value or ""})
    if custom:
        out["custom_fields"] = custom
    return out


def check_filter_allowed(list_type: str, has_filter: bool, path: str, v: Violations) -> None:
    if list_type == STATIC and has_filter:
        v.add(path, "only a dynamic list has a filter")


def check_type(list_type: str | None, path: str, v: Violations) -> str:
    list_type = list_type or STATIC
    if list_type not in TYPES:
        v.add(path, f"must be one of {', '.join(TYPES)}")
    return list_type


def parse_donor_ids(values: list[str], field_name: str, v: Violations) -> list[uuid.UUID]:
    """The distinct ids of a member batch (1 to MAX_MEMBERS_PER_CALL); bad ones named by index."""
    if not values:
        v.add(field_name, "must name at least one donor")
    elif len(values) > MAX_MEMBERS_PER_CALL:
        v.add(field_name, f"must name at most {MAX_MEMBERS_PER_CALL} donors per call")
        return []
    out: list[uuid.UUID] = []
    for i, value in enumerate(values):
        try:
            out.append(uuid.UUID(value))
        except ValueError:
            v.add(f"{field_name}[{i}]", "is not a valid id")
    return list(dict.fromkeys(out))


def check_static(list_type: str, list_id: str) -> None:
    if list_type != STATIC:
        raise FailedPrecondition(f"donor list {list_id} is dynamic: its members come from its filter",
                                 reason="LIST_IS_DYNAMIC", metadata={"list_id": list_id})
