"""identity's SQL for signing keys: global, not tenant data (no RLS), one active at a time."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text

from chassis.db import Connection


async def lock_signing_keys(conn: Connection) -> None:
    """Serializes key creation and rotation across replicas (until the transaction ends)."""
    await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('identity.signing_keys'))"))


async def active_signing_key(conn: Connection) -> dict[str, Any] | None:
    row = (await conn.execute(
        text("SELECT kid, private_key_sealed FROM identity.signing_keys WHERE retired_at IS NULL "
             "ORDER BY created_at DESC LIMIT 1"),
    )).mappings().first()
    return dict(row) if row else None


async def insert_signing_key(conn: Connection, kid: str, sealed: str, public_jwk: str) -> None:
    await conn.execute(
        text("INSERT INTO identity.signing_keys (kid, private_key_sealed, public_jwk) "
             "VALUES (:k, :s, CAST(:j AS jsonb))"),
        {"k": kid, "s": sealed, "j": public_jwk},
    )


async def retire_active_keys(conn: Connection) -> list[str]:
    rows = (await conn.execute(
        text("UPDATE identity.signing_keys SET retired_at = now(), updated_at = now() "
             "WHERE retired_at IS NULL RETURNING kid"),
    )).scalars().all()
    return list(rows)


_PUBLISHED = "retired_at IS NULL OR retired_at > now() - make_interval(secs => :keep)"


async def public_jwks(conn: Connection, keep_seconds: float) -> list[dict[str, Any]]:
    """The active key and every key retired less than keep_seconds ago (its tokens may still
    be valid), oldest first."""
    rows = (await conn.execute(
        text(f"SELECT public_jwk FROM identity.signing_keys WHERE {_PUBLISHED} ORDER BY created_at"),
        {"keep": float(keep_seconds)},
    )).scalars().all()
    return [json.loads(r) if isinstance(r, str) else dict(r) for r in rows]


async def count_published(conn: Connection, keep_seconds: float) -> int:
    return int((await conn.execute(
        text(f"SELECT count(*) FROM identity.signing_keys WHERE {_PUBLISHED}"), {"keep": float(keep_seconds)},
    )).scalar() or 0)
