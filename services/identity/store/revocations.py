"""identity's SQL for revocations (membership and session), which every service lists.

No row-level security (ids and times only; every service lists them across organizations), so
the organization is keyed as tenant_id, as in the outbox."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from chassis.db import Connection
from chassis.revocation import Revocation


async def record(conn: Connection, kind: str, org: uuid.UUID, subject_id: str, not_before: float,
                 horizon: float) -> None:
    """Tokens of the subject issued before not_before are refused until not_before + horizon."""
    await conn.execute(
        text("INSERT INTO identity.revocations AS r (kind, tenant_id, subject_id, not_before, expires_at) "
             "VALUES (:k, :o, :s, to_timestamp(:nb), to_timestamp(:nb) + make_interval(secs => :h)) "
             "ON CONFLICT (kind, subject_id, tenant_id) DO UPDATE SET "
             "not_before = GREATEST(r.not_before, EXCLUDED.not_before), "
             "expires_at = GREATEST(r.expires_at, EXCLUDED.expires_at), recorded_at = now()"),
        {"k": kind, "o": org, "s": subject_id, "nb": not_before, "h": float(horizon)},
    )


async def in_force(conn: Connection, since: float | None) -> tuple[list[Revocation], float]:
    """The revocations not yet expired, recorded at or after since (all when None), and now."""
    rows = (await conn.execute(
        text("SELECT kind, tenant_id, subject_id, extract(epoch FROM not_before)::float8 AS nb, "
             "extract(epoch FROM expires_at)::float8 AS exp FROM identity.revocations "
             "WHERE expires_at > now() AND (CAST(:since AS float8) IS NULL "
             "OR recorded_at >= to_timestamp(CAST(:since AS float8)))"),
        {"since": since},
    )).all()
    now = (await conn.execute(text("SELECT extract(epoch FROM now())::float8"))).scalar()
    return [Revocation(r["kind"], r["tenant_id"], r["subject_id"], r["nb"], r["exp"]) for r in rows], now


async def prune(conn: Connection) -> int:
    """Forgets the revocations whose tokens have all expired."""
    return (await conn.execute(text("DELETE FROM identity.revocations WHERE expires_at < now()"))).rowcount
