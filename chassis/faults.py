"""Which failures are the infrastructure's, not the request's or the handler's.

A database or broker that cannot be reached (refused, reset, shutting down, in recovery, a pool
that cannot hand out a connection in time) is transient: a client should retry (UNAVAILABLE),
and an event consumer should wait and try again without counting it toward the poison limit.
Everything else (a bug, a constraint, bad data) is the caller's or the handler's own.
"""

from __future__ import annotations

import errno

import asyncpg
from aiormq import exceptions as amqp_errors

_NETWORK_ERRNOS = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN, errno.ETIMEDOUT, errno.EPIPE,
                   errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED}

_TRANSIENT: tuple[type[BaseException], ...] = (
    ConnectionError,  # refused, reset, aborted, broken pipe
    TimeoutError,  # a connect or pool acquire that did not finish in time
    asyncpg.PostgresConnectionError,  # 08xxx, and the connection closed under us
    asyncpg.CannotConnectNowError,  # 57P03: starting up, in recovery
    asyncpg.AdminShutdownError,  # 57P01: the server is shutting down
    asyncpg.CrashShutdownError,  # 57P02
    asyncpg.TooManyConnectionsError,  # 53300
    amqp_errors.AMQPConnectionError,
    amqp_errors.ChannelInvalidStateError,
)


def is_transient(exc: BaseException | None) -> bool:
    """True if `exc`, or any exception it was raised from or while handling, is an outage."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, _TRANSIENT):
            return True
        if isinstance(exc, OSError) and exc.errno in _NETWORK_ERRNOS:
            return True
        if isinstance(exc, asyncpg.InterfaceError) and "closed" in str(exc):  # used after the link broke
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def is_statement_timeout(exc: BaseException | None) -> bool:
    """True if PostgreSQL cancelled a statement that ran past statement_timeout (57014)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, asyncpg.QueryCanceledError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
