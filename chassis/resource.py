"""The per-resource conventions every service's API follows, written once.

- ids on the wire are UUID strings (`parse_id`); a missing resource is NOT_FOUND (`found`);
- an update carries the etag it read; a stale one is ABORTED (`etag`, `check_etag`, `current`, AIP-154);
- a FieldMask's paths name updatable fields; an empty mask means all of them (`expand_mask`, AIP-134);
- a create may carry a request id, so a retry returns the first result (`check_request_id`, AIP-155);
- a list is keyset-paged with opaque tokens bound to its filters (`Keyset`, AIP-158).

Every check can either raise at once or collect its violation into a `Violations`, so a
request with several bad fields is answered with all of them.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from chassis import paging
from chassis.db import Connection, Database
from chassis.errors import Aborted, InvalidArgument, NotFound, Violations

REQUEST_ID_MAX = 100
R = TypeVar("R")


def _report(v: Violations | None, field: str, description: str) -> None:
    if v is None:
        raise InvalidArgument.field(field, description)
    v.add(field, description)


def parse_id(value: str, field: str, v: Violations | None = None) -> uuid.UUID | None:
    """A required resource id. Without `v` a bad one raises; with it, it is collected and None returned."""
    if not value:
        _report(v, field, "is required")
        return None
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError):
        _report(v, field, "is not a valid id")
        return None


def parse_optional_id(value: str, field: str, v: Violations | None = None) -> uuid.UUID | None:
    """An optional id: empty means None; anything else must be a valid id."""
    return parse_id(value, field, v) if value else None


def etag(version: int) -> str:
    """The weak etag of a row's version counter."""
    return f'W/"{version}"'


def check_etag(given: str, version: int, what: str, field: str) -> None:
    """An update that names an etag must name the current one (an empty etag means "whatever is there")."""
    if given and given != etag(version):
        raise Aborted(f"the {what} changed since it was read ({field} is stale); read it again",
                      reason="ETAG_MISMATCH")


def found(row: R | None, what: str, name: str) -> R:
    """The row read, or NOT_FOUND naming the resource as the caller did ("donor <id> not found")."""
    if row is None:
        raise NotFound(f"{what} {name} not found")
    return row


async def read_one(db: Database, org: uuid.UUID, resource_id: str, what: str,
                   get: Callable[[Connection, uuid.UUID, uuid.UUID], Awaitable[R | None]]) -> R:
    """A Get: the request's id parsed, the row read by `get` in the tenant's unit of work, and
    NOT_FOUND when there is none."""
    rid = parse_id(resource_id, "id")
    async with db.unit_of_work(org) as uow:
        row = await get(uow.conn, org, rid)
    return found(row, what, resource_id)


def current(row: R | None, what: str, name: str, given_etag: str, field: str) -> R:
    """A row read (and locked) for a change: it exists, and `given_etag` is not stale (`check_etag`)."""
    check_etag(given_etag, found(row, what, name).version, what, field)
    return row


def check_request_id(request_id: str, v: Violations | None = None, field: str = "request_id") -> str:
    if len(request_id) > REQUEST_ID_MAX:
        _report(v, field, f"must be at most {REQUEST_ID_MAX} characters")
    return request_id


def expand_mask(paths: Iterable[str], updatable: Mapping[str, str | Sequence[str]] | Sequence[str], field: str,
                v: Violations, *, default: Sequence[str] | None = None) -> list[str]:
    """FieldMask paths to the attributes they update, without duplicates, in the order named.

    `updatable` maps each path to its attribute (or attributes), or lists paths that are their own
    attribute. A path that is the parent of mapped paths ("address" of "address.city") means all
    of them. An empty mask means every updatable attribute, or `default` when given.
    """
    table: dict[str, tuple[str, ...]] = {}
    if isinstance(updatable, Mapping):
        for path, attrs in updatable.items():
            table[path] = (attrs,) if isinstance(attrs, str) else tuple(attrs)
    else:
        table = {path: (path,) for path in updatable}
    paths = list(paths)
    out: list[str] = []

    def add(attrs: Iterable[str]) -> None:
        out.extend(a for a in attrs if a not in out)

    if not paths:
        if default is not None:
            add(default)
        else:
            for attrs in table.values():
                add(attrs)
        return out
    for p in paths:
        if p in table:
            add(table[p])
            continue
        children = [attrs for path, attrs in table.items() if path.startswith(p + ".")]
        if children:
            for attrs in children:
                add(attrs)
        else:
            v.add(field, f"unknown or read-only field {p!r}; updatable: {', '.join(table)}")
    return out


def update_request(resource_id: str, id_field: str, mask: Iterable[str],
                   updatable: Mapping[str, str | Sequence[str]] | Sequence[str]) -> tuple[uuid.UUID, list[str]]:
    """An Update request's resource id and the attributes its mask names (`parse_id`, `expand_mask`)."""
    rid = parse_id(resource_id, id_field)
    v = Violations()
    attrs = expand_mask(mask, updatable, "update_mask", v)
    v.raise_if_any()
    return rid, attrs


def _key_part(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (int, str)) and not isinstance(value, bool):
        return value
    return str(value)


@dataclass(frozen=True)
class Keyset:
    """One request's keyset page: its size, the key it starts after, and how to cut the next token.

        page = Keyset.of(req.page_size, req.page_token, ("projects", status), (datetime.fromisoformat, uuid.UUID))
        rows = await store.page(conn, ..., after=page.after, limit=page.limit)
        rows, token = page.cut(rows, lambda r: (r["created_at"], r["id"]))

    The token carries the sort key of the page's last row and a fingerprint of the filters, so
    a token reused with other filters or ordering is INVALID_ARGUMENT, never a mixed result.
    """

    size: int
    fingerprint: str
    after: list[Any] | None

    @classmethod
    def of(cls, page_size: int, page_token: str, filters: Sequence[Any], parsers: Sequence[Callable[[Any], Any]],
           *, default: int = paging.DEFAULT_PAGE_SIZE, maximum: int = paging.MAX_PAGE_SIZE,
           field: str = "page_token", size_field: str = "page_size") -> Keyset:
        size = paging.page_size(page_size, size_field, default, maximum)
        fp = paging.fingerprint(*filters)
        after = paging.decode_keyset(page_token, fp, *parsers, field=field)
        return cls(size, fp, after)

    @property
    def limit(self) -> int:
        """Fetch one row more than the page: its presence says there is a next page."""
        return self.size + 1

    def cut(self, rows: list[Any], key: Callable[[Any], Sequence[Any]]) -> tuple[list[Any], str]:
        """The page and the token after its last row ("" when this is the last page)."""
        if len(rows) <= self.size:
            return rows, ""
        rows = rows[: self.size]
        return rows, paging.encode([_key_part(k) for k in key(rows[-1])], self.fingerprint)
