"""Signing keys: the Ed25519 key that signs access tokens, sealed at rest, its rotation, and
the JWKS.

Each replica holds the active key in memory. A rotation makes a new key the active one and
marks the old one retired; the replica that rotated switches at once, the others when they
next reload (`run_reloader`, every RELOAD_SECONDS). A retired key stays in the JWKS until
the last token it may have signed has expired, so verifiers accept old tokens until then
and new ones at once (they refetch the JWKS on an unknown kid).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import uuid

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from chassis.auth import ACCESS_TOKEN_TYPE, ALGORITHM
from chassis.context import Principal
from chassis.db import Database, UnitOfWork
from chassis.errors import ResourceExhausted
from services.identity.crypto import Keyring
from services.identity.domain import keys as rules
from services.identity.handlers import platform
from services.identity.store import keys as store

log = logging.getLogger(__name__)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class SigningKeys:
    def __init__(self, db: Database, keyring: Keyring, access_ttl: float = 15 * 60,
                 reload_seconds: float = rules.RELOAD_SECONDS):
        self.db = db
        self.keyring = keyring
        self.keep_seconds = rules.keep_published_seconds(access_ttl)
        self.reload_seconds = reload_seconds
        self.kid = ""
        self._private: Ed25519PrivateKey | None = None

    def _use(self, kid: str, key: Ed25519PrivateKey) -> None:
        # No await in between: sign() never sees one key's kid with another's private key.
        self._private = key
        self.kid = kid

    async def load_or_create(self) -> None:
        async with self.db.unit_of_work(None) as uow:
            await store.lock_signing_keys(uow.conn)
            row = await store.active_signing_key(uow.conn)
            if row is None:
                kid, key = await self._create(uow)
            else:
                kid, key = row["kid"], self._open(row)
        self._use(kid, key)

    async def reload(self) -> bool:
        """Switch to the active key if another replica rotated. True when it changed."""
        async with self.db.unit_of_work(None) as uow:
            row = await store.active_signing_key(uow.conn)
        if row is None or row["kid"] == self.kid:
            return False
        self._use(row["kid"], self._open(row))
        log.info("identity: now signing with key %s (rotated elsewhere)", row["kid"])
        return True

    async def run_reloader(self) -> None:
        while True:
            await asyncio.sleep(self.reload_seconds)
            try:
                await self.reload()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep signing with the key we have; try again later
                log.warning("identity: could not reload the signing key: %s", exc)

    async def rotate(self, principal: Principal) -> str:
        """A new key signs from now on; the old one is retired (still published for a while)."""
        async with self.db.unit_of_work(principal.tenant_id) as uow:
            await platform.require(uow, principal, rules.ROTATE_PERMISSION)  # a platform operator, still
            await store.lock_signing_keys(uow.conn)
            if await store.count_published(uow.conn, self.keep_seconds) >= rules.MAX_PUBLISHED_KEYS:
                raise ResourceExhausted("too many recent rotations: wait until a retired key has expired",
                                        reason="TOO_MANY_SIGNING_KEYS")
            retired = await store.retire_active_keys(uow.conn)
            kid, key = await self._create(uow)
            await platform.record(uow, principal, "platform.signing_key.rotate", "signing_key", kid,
                                  {"retired": retired, "kid": kid})
        self._use(kid, key)
        log.info("identity: signing key rotated: %s -> %s", ",".join(retired), kid)
        return kid

    async def _create(self, uow: UnitOfWork) -> tuple[str, Ed25519PrivateKey]:
        kid = uuid.uuid4().hex[:16]
        key = Ed25519PrivateKey.generate()
        raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
        pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": _b64(pub), "kid": kid, "alg": ALGORITHM, "use": "sig"}
        await store.insert_signing_key(uow.conn, kid, self.keyring.seal(raw, kid.encode()), json.dumps(jwk))
        return kid, key

    def _open(self, row: dict) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.keyring.open(row["private_key_sealed"], row["kid"].encode()))

    def sign(self, claims: dict) -> str:
        assert self._private is not None, "signing key not loaded"
        return jwt.encode(claims, self._private, algorithm=ALGORITHM,
                          headers={"kid": self.kid, "typ": ACCESS_TOKEN_TYPE})

    async def jwks(self) -> list[dict]:
        async with self.db.unit_of_work(None) as uow:
            return await store.public_jwks(uow.conn, self.keep_seconds)
