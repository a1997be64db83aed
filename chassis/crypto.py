"""Secrets at rest and in events: AES-256-GCM under a key id, so keys can rotate.

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


# -- secrets in events -----------------------------------------------------------------------
#
# A link or code meant for a user (password reset, email verification, invitation, phone code)
# travels to comms, its one consumer, sealed under keys only the publisher and comms hold
# (IDENTITY_EVENT_SECRET_KEYS on identity, the same keys on comms). The outbox, the broker, a
# dead-letter queue and anyone bound to the exchange see only the ciphertext. The associated data
# binds it to the event type and aggregate, so a sealed value moved into another event fails.

# Development only: published, like identity's DEV_ENCRYPTION_KEYS.
DEV_EVENT_SECRET_KEYS = "devev1:ZGV2LWV2ZW50LXNlY3JldHMtb25seS1kZXYtZGV2LTE="


def _event_aad(event_type: str, aggregate_id: str) -> bytes:
    return f"givance-event-secret:{event_type}:{aggregate_id}".encode()


def seal_event_secret(keyring: Keyring, event_type: str, aggregate_id: str, secret: str) -> str:
    return keyring.seal(secret.encode(), _event_aad(event_type, aggregate_id))


def open_event_secret(keyring: Keyring, event_type: str, aggregate_id: str, sealed: str) -> str:
    """The secret, for the consumer holding the keys (raises on a wrong key or a moved value)."""
    return keyring.open(sealed, _event_aad(event_type, aggregate_id)).decode()
