"""Signing keys: the Ed25519 key that signs access tokens, sealed at rest, and the JWKS."""

from __future__ import annotations

import base64
import json
import uuid

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from chassis.auth import ACCESS_TOKEN_TYPE, ALGORITHM
from chassis.crypto import Keyring
from chassis.db import Database
from services.identity.store import accounts as store


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class SigningKeys:
    def __init__(self, db: Database, keyring: Keyring):
        self.db = db
        self.keyring = keyring
        self.kid = ""
        self._private: Ed25519PrivateKey | None = None

    async def load_or_create(self) -> None:
        async with self.db.unit_of_work(None) as uow:
            await store.lock_signing_keys(uow.conn)
            row = await store.active_signing_key(uow.conn)
            if row is None:
                kid = uuid.uuid4().hex[:16]
                key = Ed25519PrivateKey.generate()
                raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                        serialization.NoEncryption())
                pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
                jwk = {"kty": "OKP", "crv": "Ed25519", "x": _b64(pub), "kid": kid, "alg": ALGORITHM, "use": "sig"}
                await store.insert_signing_key(uow.conn, kid, self.keyring.seal(raw, kid.encode()), json.dumps(jwk))
                row = {"kid": kid, "private_key_sealed": self.keyring.seal(raw, kid.encode())}
                self._private = key
            else:
                raw = self.keyring.open(row["private_key_sealed"], row["kid"].encode())
                self._private = Ed25519PrivateKey.from_private_bytes(raw)
            self.kid = row["kid"]

    def sign(self, claims: dict) -> str:
        assert self._private is not None, "signing key not loaded"
        return jwt.encode(claims, self._private, algorithm=ALGORITHM,
                          headers={"kid": self.kid, "typ": ACCESS_TOKEN_TYPE})

    async def jwks(self) -> list[dict]:
        async with self.db.unit_of_work(None) as uow:
            return await store.public_jwks(uow.conn)
