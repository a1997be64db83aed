"""The asyncpg pool every unit of work draws from, with the server-side limits each pooled
connection carries (statement and idle-in-transaction timeouts)."""

from __future__ import annotations

import asyncio

import asyncpg

from chassis.settings import plain_dsn


async def _reset(conn: asyncpg.Connection) -> None:
    """On release: only end a transaction left open. set_config(..., true) is transaction-local,
    so there is no session state to reset and no round trip to spend when none is open."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


class Engine:
    """An asyncpg pool, created on first use (constructors stay synchronous)."""

    def __init__(self, url: str, *, pool_size: int = 10, application_name: str = "givance",
                 acquire_timeout: float = 10.0, statement_timeout_ms: int = 60_000,
                 idle_in_transaction_timeout_ms: int = 60_000):
        self.dsn = plain_dsn(url) if "://" in url else url
        self.pool_size = pool_size
        # A request that cannot get a connection in this time is UNAVAILABLE (retryable), not a hang.
        self.acquire_timeout = acquire_timeout
        self.application_name = application_name
        # Server-side limits on every pooled connection (0 turns one off): a statement running
        # longer is cancelled; a transaction idle longer is ended and its connection closed.
        self.statement_timeout_ms = statement_timeout_ms
        self.idle_in_transaction_timeout_ms = idle_in_transaction_timeout_ms
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    async def acquire_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        self.dsn, min_size=1, max_size=self.pool_size, reset=_reset,
                        server_settings={
                            "application_name": self.application_name, "jit": "off",
                            "statement_timeout": str(self.statement_timeout_ms),
                            "idle_in_transaction_session_timeout": str(self.idle_in_transaction_timeout_ms),
                        },
                    )
        return self._pool

    def checkedout(self) -> int:
        if self._pool is None:
            return 0
        return self._pool.get_size() - self._pool.get_idle_size()

    @property
    def pool(self) -> Engine:  # SQLAlchemy spelling: engine.pool.checkedout()
        return self

    async def dispose(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


def create_engine(url: str, *, pool_size: int = 10, application_name: str = "givance",
                  statement_timeout_ms: int = 60_000, idle_in_transaction_timeout_ms: int = 60_000) -> Engine:
    return Engine(url, pool_size=pool_size, application_name=application_name,
                  statement_timeout_ms=statement_timeout_ms,
                  idle_in_transaction_timeout_ms=idle_in_transaction_timeout_ms)
