"""crm's tribute SQL: a gift's tribute (in honour or memory of someone, and whom to tell)."""

from __future__ import annotations

import uuid
from dataclasses import asdict, fields

from chassis import sql
from chassis.db import Connection
from services.crm.domain.tributes import Tribute

_FIELDS = [f.name for f in fields(Tribute)]


async def insert(conn: Connection, org: uuid.UUID, donation_id: uuid.UUID, t: Tribute) -> None:
    await conn.execute(
        f"INSERT INTO crm.donation_tributes (donation_id, organization_id, {', '.join(_FIELDS)}) "
        f"VALUES (:donation_id, :org, {', '.join(':' + f for f in _FIELDS)})",
        {"donation_id": donation_id, "org": org, **asdict(t)},
    )


async def of_gifts(conn: Connection, org: uuid.UUID, donation_ids: list[uuid.UUID]) -> dict[uuid.UUID, Tribute]:
    if not donation_ids:
        return {}
    rows = await sql.every(conn, f"SELECT donation_id, {', '.join(_FIELDS)} FROM crm.donation_tributes "
                           "WHERE organization_id = :org AND donation_id = ANY(CAST(:ids AS uuid[]))",
                           {"org": org, "ids": donation_ids}, tuple)
    return {r[0]: Tribute(*r[1:]) for r in rows}
