"""identity's SQL for revocations (membership, session, organization suspension), which every
service lists.

No row-level security (ids and times only; every service lists them across organizations), so
the organization is keyed as tenant_id, as in the outbox."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from chassis.db import Connection
from chassis.revocation import ORGANIZATION, Revocation

# A suspension's row is kept this long after its reactivation, so a service that was away
# (broker down, identity unreachable) still hears of the reactivation when it lists again.
ENDED_SUSPENSION_KEPT = "7 days"


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


async def suspend(conn: Connection, org: uuid.UUID, since: float, label: str = "") -> None:
    """The organization's calls refused from `since` until reactivated (expires_at infinity);
    label '' a suspension, 'erased' for good (chassis.revocation)."""
    await conn.execute(
        text("INSERT INTO identity.revocations AS r (kind, tenant_id, subject_id, not_before, expires_at) "
             "VALUES (:k, :o, :label, to_timestamp(:since), 'infinity') ON CONFLICT (kind, subject_id, tenant_id) "
             "DO UPDATE SET not_before = EXCLUDED.not_before, expires_at = 'infinity', recorded_at = now()"),
        {"k": ORGANIZATION, "o": org, "since": since, "label": label})


async def end_suspension(conn: Connection, org: uuid.UUID, until: float) -> None:
    await conn.execute(
        text("UPDATE identity.revocations SET expires_at = to_timestamp(:until), recorded_at = now() "
             "WHERE kind = :k AND tenant_id = :o AND subject_id = ''"),
        {"k": ORGANIZATION, "o": org, "until": until})


async def suspension_start(conn: Connection, org: uuid.UUID) -> float | None:
    """When the organization's suspension in force began (None: it is not suspended)."""
    return (await conn.execute(
        text("SELECT extract(epoch FROM not_before)::float8 FROM identity.revocations "
             "WHERE kind = :k AND tenant_id = :o AND subject_id = '' AND expires_at > now()"),
        {"k": ORGANIZATION, "o": org})).scalar()


async def in_force(conn: Connection, since: float | None) -> tuple[list[Revocation], float]:
    """The revocations not yet expired, recorded at or after since (all when None), and now;
    from `since`, also the suspensions that ended since (so a listener forgets them)."""
    rows = (await conn.execute(
        text("SELECT kind, tenant_id, subject_id, extract(epoch FROM not_before)::float8 AS nb, "
             "extract(epoch FROM expires_at)::float8 AS exp FROM identity.revocations "
             "WHERE CASE WHEN CAST(:since AS float8) IS NULL THEN expires_at > now() "
             "ELSE recorded_at >= to_timestamp(CAST(:since AS float8)) AND (expires_at > now() OR kind = :org) END"),
        {"since": since, "org": ORGANIZATION},
    )).all()
    now = (await conn.execute(text("SELECT extract(epoch FROM now())::float8"))).scalar()
    return [Revocation(r["kind"], r["tenant_id"], r["subject_id"], r["nb"], r["exp"]) for r in rows], now


async def prune(conn: Connection) -> int:
    """Forgets the revocations whose tokens have all expired."""
    return (await conn.execute(
        text("DELETE FROM identity.revocations WHERE expires_at < now() "
             f"AND (kind <> :org OR expires_at < now() - interval '{ENDED_SUSPENSION_KEPT}')"),
        {"org": ORGANIZATION})).rowcount
