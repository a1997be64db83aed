"""Secrets at rest: AES-256-GCM under a key id, so keys can rotate.

A sealed value is `v1.<kid>.<base64url(nonce | ciphertext+tag)>`; the associated data binds
it to its purpose (for example the table and row), so a ciphertext copied elsewhere fails.
Keys come from settings as `kid:base64key,kid2:base64key2`; the first one seals.
"""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class Keyring:
    def __init__(self, spec: str):
        self._keys: dict[str, AESGCM] = {}
        self.primary = ""
        for part in filter(None, (p.strip() for p in spec.split(","))):
            kid, _, b64 = part.partition(":")
            key = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
            if len(key) != 32:
                raise ValueError(f"encryption key {kid!r} must be 32 bytes (AES-256)")
            self._keys[kid] = AESGCM(key)
            self.primary = self.primary or kid
        if not self._keys:
            raise ValueError("no encryption keys configured")

    def seal(self, plaintext: bytes, aad: bytes = b"") -> str:
        nonce = os.urandom(12)
        ct = self._keys[self.primary].encrypt(nonce, plaintext, aad)
        return f"v1.{self.primary}.{base64.urlsafe_b64encode(nonce + ct).decode()}"

    def open(self, sealed: str, aad: bytes = b"") -> bytes:
        version, kid, b64 = sealed.split(".", 2)
        if version != "v1" or kid not in self._keys:
            raise ValueError("sealed with an unknown key")
        raw = base64.urlsafe_b64decode(b64)
        return self._keys[kid].decrypt(raw[:12], raw[12:], aad)


def generate_key_spec(kid: str = "k1") -> str:
    return f"{kid}:{base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode()}"
