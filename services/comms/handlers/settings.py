"""The organization's sending settings: read, update (the DKIM key sealed, never returned)."""

from __future__ import annotations

import uuid
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chassis.errors import Violations
from chassis.resource import check_etag
from services.comms.domain import addresses
from services.comms.domain import templates as tpl
from services.comms.handlers.deps import Deps
from services.comms.handlers.sender import dkim_aad
from services.comms.store import settings as store

SIGNATURE_MAX = 4000
DKIM_KEY_MAX = 16 * 1024
DELAY_MAX_SECONDS = 30 * 24 * 3600


async def get_settings(deps: Deps, org: uuid.UUID) -> dict[str, Any]:
    async with deps.db.unit_of_work(org) as uow:
        return await store.get(uow.conn, org)


async def update_settings(deps: Deps, org: uuid.UUID, given_etag: str, values: dict[str, Any],
                          attrs: list[str]) -> dict[str, Any]:
    v = Violations()
    out: dict[str, Any] = {}
    for a in attrs:
        value = values[a]
        path = f"settings.{a}"
        if a in ("from_address", "reply_to"):
            out[a] = addresses.email(value, path, v) if value else ""
        elif a == "from_name":
            v.check_text(path, value, 200)
            out[a] = value.strip()
        elif a == "signature":
            v.check_text(path, value, SIGNATURE_MAX)
            out[a] = value
        elif a in ("dkim_domain", "dkim_selector"):
            v.check_text(path, value, 253)
            if value and not all(part.replace("-", "").isalnum() for part in value.split(".")):
                v.add(path, "must be a DNS name")
            out[a] = value.lower()
        elif a == "dkim_private_key":
            path = "settings.dkim_private_key"
            if not value:
                out["dkim_key_sealed"] = None
            elif len(value) > DKIM_KEY_MAX:
                v.add(path, f"must be at most {DKIM_KEY_MAX} characters")
            else:
                try:
                    key = serialization.load_pem_private_key(value.encode(), password=None)
                    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 1024:
                        raise ValueError
                    out["dkim_key_sealed"] = deps.keyring.seal(value.encode(), dkim_aad(org))
                except (ValueError, TypeError):
                    v.add(path, "must be an unencrypted PEM RSA private key of at least 1024 bits")
        elif a == "thank_you_template":
            if value:
                tpl.check_name(value, path, v)
            out[a] = value
        elif a == "thank_you_delay_seconds":
            if not 0 <= value <= DELAY_MAX_SECONDS:
                v.add("settings.thank_you_delay", "must be between 0 and 30 days")
            out[a] = value
        elif a == "send_rate_per_minute":
            if not 1 <= value <= 100_000:
                v.add(path, "must be between 1 and 100000")
            out[a] = value
        else:
            out[a] = value
    v.raise_if_any()
    async with deps.db.unit_of_work(org) as uow:
        row = await store.get(uow.conn, org, for_update=True)
        check_etag(given_etag, row["version"], "sending settings", "settings.etag")
        if not out:
            return row
        return await store.update(uow.conn, org, out)
