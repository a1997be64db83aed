"""The suppression list and consent: staff add and remove addresses; unsubscribes, bounces and
complaints add them; every consent change is kept."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from chassis.db import Database
from chassis.errors import NotFound, Violations
from chassis.resource import Keyset, parse_id
from services.comms.domain import addresses
from services.comms.store import suppressions as store

NOTE_MAX = 1000


def _address(value: str, field: str, v: Violations) -> str:
    return addresses.phone(value, field, v) if value.strip().startswith("+") else addresses.email(value, field, v)


async def add_suppression(db: Database, org: uuid.UUID, address: str, note: str) -> dict[str, Any]:
    v = Violations()
    clean = _address(address, "suppression.address", v)
    v.check_text("suppression.note", note, NOTE_MAX)
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        row = await store.add(uow.conn, org, clean, "manual", note)
        await store.change_consent(uow.conn, org, clean, "*", False, "api", None)
        return row


async def list_suppressions(db: Database, org: uuid.UUID, page_size: int, page_token: str
                            ) -> tuple[list[dict[str, Any]], str]:
    page = Keyset.of(page_size, page_token, ("suppressions",), (datetime.fromisoformat, uuid.UUID), maximum=500)
    async with db.unit_of_work(org) as uow:
        rows = await store.page(uow.conn, org, page.after, page.limit)
    return page.cut(rows, lambda r: (r["created_at"], r["id"]))


async def delete_suppression(db: Database, org: uuid.UUID, suppression_id: str) -> None:
    sid = parse_id(suppression_id, "id")
    async with db.unit_of_work(org) as uow:
        row = await store.delete(uow.conn, org, sid)
        if row is None:
            raise NotFound(f"suppression {suppression_id} not found")
        await store.change_consent(uow.conn, org, row["address"], "*", True, "api", None)


async def consent_history(db: Database, org: uuid.UUID, address: str) -> list[dict[str, Any]]:
    v = Violations()
    clean = _address(address, "address", v)
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        return await store.consent_history(uow.conn, org, clean)
