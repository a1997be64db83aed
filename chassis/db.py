"""Database engine and the tenant-scoped unit of work.

Every transaction a service runs sets `app.tenant_id` with set_config(..., true): it is
local to the transaction, so a pooled connection never carries a tenant into the next
request, and a failed or cancelled transaction rolls it back with everything else.
Row-level security policies read it; a query that forgets its tenant filter sees nothing.

The unit of work also writes the transactional outbox: events added during the unit are
inserted in the same transaction and a NOTIFY wakes the relay once it commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from google.protobuf.message import Message
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from chassis import events

_SET_TENANT = text("SELECT set_config('app.tenant_id', :tenant, true)")
_SET_TENANT_AND_USER = text(
    "SELECT set_config('app.tenant_id', :tenant, true), set_config('app.user_id', :user, true)")


def create_engine(url: str, *, pool_size: int = 10, application_name: str = "givance") -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,
        connect_args={"server_settings": {"application_name": application_name, "jit": "off"}},
    )


class UnitOfWork:
    """One transaction for one tenant.

        async with uow_factory(tenant_id) as uow:
            await store.insert_x(uow.conn, ...)
            uow.publish(...)
        # committed (with its outbox rows) here; rolled back on any exception
    """

    def __init__(self, engine: AsyncEngine, schema: str, tenant_id: uuid.UUID | None,
                 user_id: uuid.UUID | None = None):
        self._engine = engine
        self._schema = schema
        self.tenant_id = tenant_id
        # Set only where a policy lets a user see their own rows across tenants (their
        # memberships and sessions): app.user_id, local to the transaction like the tenant.
        self.user_id = user_id
        self._events: list[dict[str, Any]] = []
        self._cm = None
        self.conn: AsyncConnection

    async def __aenter__(self) -> UnitOfWork:
        self._cm = self._engine.begin()
        self.conn = await self._cm.__aenter__()
        tenant = str(self.tenant_id) if self.tenant_id else ""
        if self.user_id is None:
            await self.conn.execute(_SET_TENANT, {"tenant": tenant})
        else:
            await self.conn.execute(_SET_TENANT_AND_USER, {"tenant": tenant, "user": str(self.user_id)})
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        assert self._cm is not None
        if exc_type is None and self._events:
            try:
                await self._flush_events()
            except BaseException as flush_error:  # the outbox write failed: roll everything back
                await self._cm.__aexit__(type(flush_error), flush_error, flush_error.__traceback__)
                raise
        await self._cm.__aexit__(exc_type, exc, tb)

    def publish(
        self,
        event_type: str,
        payload: Message,
        *,
        aggregate_type: str,
        aggregate_id: str,
        tenant_id: uuid.UUID | None = None,
    ) -> str:
        """Queue a domain event; it is written to the outbox with this transaction."""
        tenant = tenant_id or self.tenant_id
        if tenant is None:
            raise RuntimeError("an event needs a tenant")
        row = events.outbox_row(event_type, payload, tenant, aggregate_type, aggregate_id)
        self._events.append(row)
        return row["event_id"]

    def audit(self, action: str, resource_type: str, resource_id: str, *,
              before: dict | None = None, after: dict | None = None, actor_id: str | None = None,
              actor_kind: str | None = None) -> str:
        """Record an audited action (a write, or a read of donor financial data) for the audit
        trail: `<service>.audit.recorded` through the outbox, in this transaction."""
        from givance.events.v1 import audit_events_pb2
        from google.protobuf import struct_pb2

        from chassis import context

        ctx = context.current_or_none()
        principal = ctx.principal if ctx else None
        event = audit_events_pb2.AuditRecordedEvent(
            actor_id=actor_id or (principal.subject if principal else ""),
            actor_kind=actor_kind or (principal.kind if principal else "system"),
            action=action, resource_type=resource_type, resource_id=resource_id,
            request_id=ctx.request_id if ctx else "", service=self._schema,
            ip_address=ctx.peer if ctx else "",
        )
        for field, value in (("before", before), ("after", after)):
            if value is not None:
                s = struct_pb2.Struct()
                s.update(_jsonable(value))
                getattr(event, field).CopyFrom(s)
        return self.publish(f"{self._schema}.audit.recorded", event, aggregate_type=resource_type,
                            aggregate_id=resource_id or "-")

    async def _flush_events(self) -> None:
        await self.conn.execute(
            text(
                f"INSERT INTO {self._schema}.outbox (event_id, routing_key, tenant_id, aggregate_id, body, headers) "
                "VALUES (:event_id, :routing_key, :tenant_id, :aggregate_id, :body, CAST(:headers AS jsonb))"
            ),
            self._events,
        )
        channel = events.outbox_channel(self._schema)
        await self.conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": channel})
        self._events.clear()


class Database:
    """A service's engine plus the factory of its units of work."""

    def __init__(self, engine: AsyncEngine, schema: str):
        self.engine = engine
        self.schema = schema

    def unit_of_work(self, tenant_id: uuid.UUID | None, *, user_id: uuid.UUID | None = None) -> UnitOfWork:
        return UnitOfWork(self.engine, self.schema, tenant_id, user_id)

    async def dispose(self) -> None:
        await self.engine.dispose()


def row_dict(row: Any) -> Mapping[str, Any]:
    return row._mapping


def _jsonable(value: Any) -> Any:
    """Audit before/after values as JSON: dates and UUIDs as strings, Decimals exact."""
    import json

    return json.loads(json.dumps(value, default=str))
