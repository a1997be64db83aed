"""Resource ids on the wire: UUID strings; a bad one is INVALID_ARGUMENT naming its field."""

from __future__ import annotations

import uuid

from chassis.errors import InvalidArgument


def parse_id(value: str, field: str) -> uuid.UUID:
    if not value:
        raise InvalidArgument.field(field, "is required")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidArgument.field(field, "is not a valid id") from None
