"""Database access and the tenant-scoped unit of work.

Every transaction a service runs sets `app.tenant_id` with set_config(..., true): it is
local to the transaction, so a pooled connection never carries a tenant into the next
request, and a failed or cancelled transaction rolls it back with everything else.
Row-level security policies read it; a query that forgets its tenant filter sees nothing.

The unit of work also writes the transactional outbox: events added during the unit are
inserted in the same transaction and a NOTIFY wakes the relay once it commits.

Statements are SQLAlchemy Core / `text()` constructs, compiled once by SQLAlchemy's asyncpg
dialect and run on an asyncpg pool. Running them through SQLAlchemy's async engine cost
about 0.6 ms of CPU per request (its greenlet bridge and result processing), more than the
queries themselves; the request path is the product's hot path, so it talks to asyncpg
directly, and SQLAlchemy does what it is best at here: SQL construction and Alembic.
BEGIN and set_config travel in one round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import asyncpg
from google.protobuf.message import Message
from sqlalchemy.dialects.postgresql import asyncpg as pg_asyncpg
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ClauseElement

from chassis import events, faults
from chassis.pool import Engine, create_engine  # noqa: F401  (the engine is found here too)

_DIALECT = pg_asyncpg.dialect()
_COMPILED: dict[str, tuple[str, tuple[str, ...]]] = {}


def compile_sql(statement: ClauseElement | str) -> tuple[str, tuple[str, ...]]:
    """A `text()` or Core statement -> (asyncpg SQL with $n, the bound names in $n order)."""
    key = statement if isinstance(statement, str) else getattr(statement, "text", None)
    if key is not None and key in _COMPILED:
        return _COMPILED[key]
    if isinstance(statement, str):
        from sqlalchemy import text

        statement = text(statement)
    compiled = statement.compile(dialect=_DIALECT)
    result = (compiled.string, tuple(compiled.positiontup or ()))
    if key is not None:
        _COMPILED[key] = result
    return result


class Result:
    """The rows (or the row count) of one statement, read the way SQLAlchemy's Result is."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: Sequence[asyncpg.Record], rowcount: int):
        self._rows = rows
        self.rowcount = rowcount

    def mappings(self) -> Result:
        return self

    def scalars(self) -> _Scalars:
        return _Scalars([r[0] for r in self._rows])

    def all(self) -> list[asyncpg.Record]:
        return list(self._rows)

    def first(self) -> asyncpg.Record | None:
        return self._rows[0] if self._rows else None

    def one(self) -> asyncpg.Record:
        if len(self._rows) != 1:
            raise LookupError(f"expected one row, got {len(self._rows)}")
        return self._rows[0]

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None


class _Scalars:
    __slots__ = ("_values",)

    def __init__(self, values: list[Any]):
        self._values = values

    def all(self) -> list[Any]:
        return self._values

    def first(self) -> Any:
        return self._values[0] if self._values else None

    def one(self) -> Any:
        if len(self._values) != 1:
            raise LookupError(f"expected one row, got {len(self._values)}")
        return self._values[0]


class ConstraintViolation(IntegrityError):
    """An IntegrityError whose text carries no row values: PostgreSQL's DETAIL ("Key (email)=(…)")
    and the statement's parameters stay out of messages and tracebacks."""

    def __str__(self) -> str:
        orig = self.orig
        return (f"{type(orig).__name__}: {getattr(orig, 'message', '')} "
                f"(constraint {getattr(orig, 'constraint_name', None)}, SQLSTATE {getattr(orig, 'sqlstate', None)})")


class Connection:
    """One pooled connection inside a unit of work's transaction."""

    def __init__(self, raw: asyncpg.Connection):
        self.raw = raw
        self._savepoints = 0

    async def execute(self, statement: ClauseElement | str, params: dict | Sequence[dict] | None = None) -> Result:
        sql, names = compile_sql(statement)
        try:
            if isinstance(params, list | tuple):  # executemany
                await self.raw.executemany(sql, [tuple(p[n] for n in names) for p in params])
                return Result((), len(params))
            args = tuple((params or {})[n] for n in names)
            if _returns_rows(sql):
                rows = await self.raw.fetch(sql, *args)
                return Result(rows, len(rows))
            status = await self.raw.execute(sql, *args)
            return Result((), _rowcount(status))
        except asyncpg.IntegrityConstraintViolationError as exc:
            # Stores catch SQLAlchemy's IntegrityError, as they would with its engine (exc.orig is the
            # driver's error). Its text reaches logs, so it names the constraint, never the values.
            raise ConstraintViolation(sql, params, exc, hide_parameters=True) from None

    def begin_nested(self) -> _Savepoint:
        self._savepoints += 1
        return _Savepoint(self.raw, f"sp_{self._savepoints}")


class _Savepoint:
    def __init__(self, raw: asyncpg.Connection, name: str):
        self.raw = raw
        self.name = name

    async def __aenter__(self) -> _Savepoint:
        await self.raw.execute(f"SAVEPOINT {self.name}")
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            await self.raw.execute(f"RELEASE SAVEPOINT {self.name}")
        elif not isinstance(exc, asyncio.CancelledError):
            await self.raw.execute(f"ROLLBACK TO SAVEPOINT {self.name}")


def _returns_rows(sql: str) -> bool:
    head = sql.lstrip()[:6].upper()
    return head in ("SELECT", "WITH  ", "VALUES") or head.startswith("WITH") or " RETURNING " in sql.upper()


def _rowcount(status: str) -> int:
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


# Connections on their way back to a pool (strong references for shielded returns).
_returning: set[asyncio.Future] = set()


class UnitOfWork:
    """One transaction for one tenant.

        async with uow_factory(tenant_id) as uow:
            await store.insert_x(uow.conn, ...)
            uow.publish(...)
        # committed (with its outbox rows) here; rolled back on any exception
    """

    def __init__(self, engine: Engine, schema: str, tenant_id: uuid.UUID | None,
                 user_id: uuid.UUID | None = None):
        self._engine = engine
        self._schema = schema
        self.tenant_id = tenant_id
        # Set only where a policy lets a user see their own rows across tenants (their
        # memberships and sessions): app.user_id, local to the transaction like the tenant.
        self.user_id = user_id
        self._events: list[dict[str, Any]] = []
        self._pool: asyncpg.Pool | None = None
        self.conn: Connection

    async def __aenter__(self) -> UnitOfWork:
        self._pool = await self._engine.acquire_pool()
        # UUIDs render as hex and hyphens only, so inlining them is safe; one round trip.
        tenant = str(uuid.UUID(str(self.tenant_id))) if self.tenant_id else ""
        sql = f"BEGIN; SELECT set_config('app.tenant_id', '{tenant}', true)"
        if self.user_id is not None:
            sql += f"; SELECT set_config('app.user_id', '{uuid.UUID(str(self.user_id))}', true)"
        # After a database restart every idle pooled connection is dead, and only using one
        # tells: a BEGIN that fails for that reason is tried again on another (nothing has run
        # yet), at most once per pooled connection. A server that is really down fails the
        # fresh connect inside acquire(), which is an outage the caller sees (UNAVAILABLE).
        for attempt in range(self._engine.pool_size + 1):
            raw = await self._pool.acquire(timeout=self._engine.acquire_timeout)
            try:
                await raw.execute(sql)
                break
            except BaseException as exc:
                await self._release(raw, broken=not isinstance(exc, asyncio.CancelledError), failed=True)
                if attempt == self._engine.pool_size or not faults.is_transient(exc):
                    raise
        self.conn = Connection(raw)
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        raw = self.conn.raw
        if exc_type is None:
            try:
                if self._events:
                    await self._flush_events()
                await raw.execute("COMMIT")
            except BaseException as exc:  # the outbox write or the commit failed: nothing is kept
                await self._release(raw, broken=not isinstance(exc, asyncio.CancelledError), failed=True)
                raise
            await self._release(raw)
        else:
            # Cancelled (an RPC deadline): asyncpg has asked the server to cancel the running
            # statement; rolling back waits for that, so the statement stops on the server and
            # the connection comes back clean. Terminating at once would leave it running.
            await self._release(raw, failed=True)

    async def _release(self, raw: asyncpg.Connection, *, broken: bool = False,
                       failed: bool = False) -> None:
        """Back to the pool: rolled back, or terminated when `broken`. A cancelled statement is
        never `broken`: asyncpg has sent the server a cancel request, and the ROLLBACK waits for
        it, so the statement stops on the server; terminating instead would also leave asyncpg's
        wait for that cancel failing where nobody reads it (an asyncio ERROR log).

        After a failure the ROLLBACK is sent whatever `is_in_transaction()` says: while a
        cancelled statement (a BEGIN, say) is still unanswered the connection still reports
        the state before it, and the pool would then find the transaction open (PostgreSQL
        answers a ROLLBACK with no transaction by a warning nobody listens to)."""
        assert self._pool is not None
        if not (broken or failed or raw.is_in_transaction()):  # committed: the common path
            await self._pool.release(raw)  # asyncpg shields this itself
            return
        # Shielded: a second cancellation (a client gone while the ROLLBACK waits) must not
        # leave the connection checked out forever; the return finishes on its own.
        task = asyncio.ensure_future(self._return(self._pool, raw, broken, failed))
        _returning.add(task)
        task.add_done_callback(_returning.discard)
        await asyncio.shield(task)

    @staticmethod
    async def _return(pool: asyncpg.Pool, raw: asyncpg.Connection, broken: bool, failed: bool) -> None:
        if broken:
            raw.terminate()
        else:
            try:
                if failed or raw.is_in_transaction():
                    await raw.execute("ROLLBACK")
            except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError):
                raw.terminate()
        await pool.release(raw)

    def publish(
        self,
        event_type: str,
        payload: Message,
        *,
        aggregate_type: str,
        aggregate_id: str,
        tenant_id: uuid.UUID | None = None,
        occurred_at: datetime | None = None,
    ) -> str:
        """Queue a domain event; it is written to the outbox with this transaction."""
        tenant = tenant_id or self.tenant_id
        if tenant is None:
            raise RuntimeError("an event needs a tenant")
        row = events.outbox_row(event_type, payload, tenant, aggregate_type, aggregate_id, occurred_at)
        self._events.append(row)
        return row["event_id"]

    def audit(self, action: str, resource_type: str, resource_id: str, *,
              before: dict | None = None, after: dict | None = None, actor_id: str | None = None,
              actor_kind: str | None = None, request_id: str | None = None, ip_address: str | None = None,
              occurred_at: datetime | None = None) -> str:
        """Record an audited action (a write, or a read of donor financial data) for the audit
        trail: `<service>.audit.recorded` through the outbox, in this transaction."""
        from chassis import context

        ctx = context.current_or_none()
        principal = ctx.principal if ctx else None
        event = events.audit_entry(
            action, resource_type, resource_id, service=self._schema, before=before, after=after,
            actor_id=actor_id or ((principal.actor or principal.subject) if principal else ""),
            actor_kind=actor_kind or (principal.kind if principal else "system"),
            request_id=request_id if request_id is not None else (ctx.request_id if ctx else ""),
            ip_address=ip_address if ip_address is not None else (ctx.peer if ctx else ""),
        )
        return self.publish(f"{self._schema}.audit.recorded", event, aggregate_type=resource_type,
                            aggregate_id=resource_id or "-", occurred_at=occurred_at)

    def audit_change(self, action: str, resource_type: str, resource_id: str, old: dict, new: dict) -> str:
        """Audit an update with only the fields that changed, before and after."""
        changed = [k for k in new if new[k] != old.get(k)]
        return self.audit(action, resource_type, resource_id, before={k: old.get(k) for k in changed},
                          after={k: new[k] for k in changed})

    async def _flush_events(self) -> None:
        """Every queued event and the relay's wake-up call, in one round trip."""
        rows = self._events
        await self.conn.raw.execute(
            f"WITH written AS (INSERT INTO {self._schema}.outbox "
            "(event_id, routing_key, tenant_id, aggregate_id, body, headers) "
            "SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::bytea[], $6::jsonb[]) "
            "RETURNING 1) SELECT pg_notify($7, count(*)::text) FROM written",
            [r["event_id"] for r in rows], [r["routing_key"] for r in rows], [r["tenant_id"] for r in rows],
            [r["aggregate_id"] for r in rows], [r["body"] for r in rows], [r["headers"] for r in rows],
            events.outbox_channel(self._schema),
        )
        self._events.clear()


class Database:
    """A service's engine plus the factory of its units of work."""

    def __init__(self, engine: Engine, schema: str):
        self.engine = engine
        self.schema = schema

    def unit_of_work(self, tenant_id: uuid.UUID | None, *, user_id: uuid.UUID | None = None) -> UnitOfWork:
        return UnitOfWork(self.engine, self.schema, tenant_id, user_id)

    @contextlib.asynccontextmanager
    async def alone(self) -> AsyncIterator[Connection]:
        """A pooled connection outside any transaction: each statement is a transaction of its
        own, committed before PostgreSQL answers it. Only for a statement that sets its tenant
        itself first (a function calling set_config(..., true)): any other sees no tenant's rows."""
        pool = await self.engine.acquire_pool()
        raw = await pool.acquire(timeout=self.engine.acquire_timeout)
        try:
            yield Connection(raw)
        finally:
            await asyncio.shield(pool.release(raw))  # a cancelled statement: asyncpg waits for its cancel

    async def ping(self, timeout: float = 2.0) -> bool:
        """True if the database answers a query on a pooled connection within `timeout`."""
        async def probe() -> bool:
            pool = await self.engine.acquire_pool()
            async with pool.acquire(timeout=timeout) as conn:
                return await conn.fetchval("SELECT true")

        try:
            return bool(await asyncio.wait_for(probe(), timeout))
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return False

    async def dispose(self) -> None:
        await self.engine.dispose()
