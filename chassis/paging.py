"""AIP-158 pagination: page sizes and opaque keyset page tokens.

A page token carries the sort key of the last row returned and a fingerprint of the
request's filters, so a token reused with other filters is refused rather than silently
mixing result sets.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from chassis.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def page_size(value: int, field: str = "page_size", default: int = DEFAULT_PAGE_SIZE,
              maximum: int = MAX_PAGE_SIZE) -> int:
    if value < 0:
        raise InvalidArgument.field(field, "must not be negative")
    if value == 0:
        return default
    return min(value, maximum)


def fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


def encode(key: list[Any], fp: str) -> str:
    raw = json.dumps({"k": key, "f": fp}, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str, fp: str, field: str = "page_token") -> list[Any] | None:
    """The keyset of a page token, or None for the first page."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        key = data["k"]
        if not isinstance(key, list):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise InvalidArgument.field(field, "is not a page token this method issued") from None
    if data.get("f") != fp:
        raise InvalidArgument.field(field, "was issued for a request with other filters or ordering")
    return key


def decode_keyset(token: str, fp: str, *parsers: Any, field: str = "page_token") -> list[Any] | None:
    """decode(), then each key part through its parser (datetime.fromisoformat, uuid.UUID...)."""
    key = decode(token, fp, field)
    if key is None:
        return None
    try:
        return [parse(value) for parse, value in zip(parsers, key, strict=True)]
    except (ValueError, TypeError, ArithmeticError):  # ArithmeticError: decimal.InvalidOperation
        raise InvalidArgument.field(field, "is not a page token this method issued") from None
