"""The store layer's repeated SQL shapes, written once.

Stores write their statements by hand (text SQL run through `chassis.db.Connection`); what
every store wrote again around them lives here:

- `first`, `every`: run a query and build a record from each row (`first`: None when there is none);
- `by_id`, `exists`: one tenant's row by its id, or whether it is there (live only, locked, when asked);
- `Where`: a WHERE clause and its parameters, from optional filters and a keyset position;
- `id_by_request_id`: the row a create with this request id made (AIP-155);
- `update_row`, `soft_delete`: change one tenant's row, bumping its version (the etag's counter);
- `json_object`: a jsonb column read back as a dict.

They compose the same statements the stores wrote inline (nothing is read twice, no query is
added), so the hot paths cost what they did.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from chassis.db import Connection


async def first(conn: Connection, sql: str, params: Mapping[str, Any],
                build: Callable[[Any], Any] = dict) -> Any | None:
    """The first row of a query built by `build` (a dict by default), or None when there is none."""
    row = (await conn.execute(sql, params)).first()
    return build(row) if row is not None else None


async def every(conn: Connection, sql: str, params: Mapping[str, Any],
                build: Callable[[Any], Any] = dict) -> list[Any]:
    """Every row of a query, each built by `build` (a dict by default)."""
    return [build(row) for row in (await conn.execute(sql, params)).all()]


def by_name(record: Callable[..., Any]) -> Callable[[Any], Any]:
    """A `build` that makes `record` from a row's columns by name."""
    return lambda row: record(**row)


async def by_id(conn: Connection, select: str, org: uuid.UUID, row_id: uuid.UUID,
                build: Callable[[Any], Any] = dict, *, alias: str = "", live: bool = False,
                for_update: bool = False) -> Any | None:
    """One tenant's row by its id, or None: `select` is "SELECT <columns> FROM <table> [alias]";
    `live` leaves out a deleted row; `for_update` locks it."""
    a = f"{alias}." if alias else ""
    sql = (f"{select} WHERE {a}organization_id = :org AND {a}id = :id{f' AND {a}deleted_at IS NULL' if live else ''}"
           f"{' FOR UPDATE' if for_update else ''}")
    return await first(conn, sql, {"org": org, "id": row_id}, build)


async def exists(conn: Connection, table: str, org: uuid.UUID, row_id: uuid.UUID, *, live: bool = False,
                 lock: str = "") -> bool:
    """Whether one tenant's row is there (and not deleted, when `live`); `lock` is a locking
    clause ("FOR SHARE": it stays so until the transaction ends)."""
    sql = (f"SELECT 1 FROM {table} WHERE organization_id = :org AND id = :id"
           f"{' AND deleted_at IS NULL' if live else ''}{' ' + lock if lock else ''}")
    return bool((await conn.execute(sql, {"org": org, "id": row_id})).scalar())


class Where:
    """A WHERE clause (its conditions joined with AND) and the parameters it binds.

        where = Where("p.organization_id = :org", org=org, limit=limit)
        where.filter("p.status = :status", status=status)   # only when status is given
        where.keyset("(p.created_at, p.id) <", after)       # only on a page after the first
        await conn.execute(f"SELECT ... WHERE {where} ORDER BY ... LIMIT :limit", where.params)
    """

    __slots__ = ("conditions", "params")

    def __init__(self, *conditions: str, **params: Any):
        self.conditions = list(conditions)
        self.params: dict[str, Any] = params

    def add(self, condition: str, **params: Any) -> Where:
        self.conditions.append(condition)
        self.params.update(params)
        return self

    def filter(self, condition: str, **params: Any) -> Where:
        """Adds the condition when each of its parameters is given (neither None nor empty text)."""
        for value in params.values():
            if value is None or value == "":
                return self
        self.conditions.append(condition)
        self.params.update(params)
        return self

    def filters(self, template: str, values: Iterable[tuple[str, Any]]) -> Where:
        """One `filter` per (column, value): the template names the column as {c}, the parameter as :{c}."""
        for column, value in values:
            self.filter(template.format(c=column), **{column: value})
        return self

    def keyset(self, key: str, after: Sequence[Any] | None, prefix: str = "after") -> Where:
        """Rows past a keyset position: `key` is the compared tuple and its operator ("(a, id) <");
        the position's values bind as :after_0, :after_1, ... No condition on the first page."""
        if after is not None:
            placeholders, names = _keyset_names(prefix, len(after))
            self.conditions.append(f"{key} {placeholders}")
            self.params.update(zip(names, after, strict=True))
        return self

    def __str__(self) -> str:
        return " AND ".join(self.conditions)


@functools.cache
def _keyset_names(prefix: str, n: int) -> tuple[str, tuple[str, ...]]:
    names = tuple(f"{prefix}_{i}" for i in range(n))
    return f"({', '.join(':' + n for n in names)})", names


async def id_by_request_id(conn: Connection, table: str, org: uuid.UUID, request_id: str) -> uuid.UUID | None:
    """The id of the row of `table` that the create with this request id made (AIP-155), if any."""
    return (await conn.execute(
        f"SELECT id FROM {table} WHERE organization_id = :org AND create_request_id = :rid",
        {"org": org, "rid": request_id},
    )).scalar()


def assignments(columns: Iterable[str], casts: Mapping[str, str] | None = None) -> str:
    """`col = :col, ...`, with `CAST(:col AS type)` for the columns `casts` names."""
    casts = casts or {}
    return ", ".join(f"{c} = CAST(:{c} AS {casts[c]})" if c in casts else f"{c} = :{c}" for c in columns)


async def update_row(conn: Connection, table: str, org: uuid.UUID | None, row_id: uuid.UUID,
                     values: Mapping[str, Any], *, casts: Mapping[str, str] | None = None,
                     returning: str | None = None) -> Any:
    """Sets `values` on one tenant's row (org None: a row keyed by its id alone), bumping its version
    and update time; with `returning`, the updated row (None when there is none), else the number
    of rows changed."""
    sql = (f"UPDATE {table} SET {assignments(values, casts)}, version = version + 1, updated_at = now() "
           f"WHERE {'id = :id' if org is None else 'organization_id = :org AND id = :id'}")
    params = {**values, "org": org, "id": row_id}
    if returning is None:
        return (await conn.execute(sql, params)).rowcount
    return (await conn.execute(f"{sql} RETURNING {returning}", params)).first()


async def soft_delete(conn: Connection, table: str, org: uuid.UUID, row_id: uuid.UUID, *,
                      returning: str | None = None) -> Any:
    """Marks one tenant's row deleted (it stays, for restores and history), bumping its version;
    with `returning`, the row as it is now."""
    sql = (f"UPDATE {table} SET deleted_at = now(), updated_at = now(), version = version + 1 "
           "WHERE organization_id = :org AND id = :id")
    if returning is None:
        await conn.execute(sql, {"org": org, "id": row_id})
        return None
    return (await conn.execute(f"{sql} RETURNING {returning}", {"org": org, "id": row_id})).first()


def json_object(value: Any) -> dict[str, Any]:
    """A jsonb column's value as a dict: text is parsed, NULL is {}."""
    if isinstance(value, str):
        return json.loads(value)
    return {} if value is None else value
