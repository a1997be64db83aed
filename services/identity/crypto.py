"""Secrets at rest: AES-256-GCM under a key id (the mechanism lives in chassis.crypto, which
comms shares to open the secrets identity seals for it in events)."""

from chassis.crypto import Keyring, generate_key_spec

__all__ = ["Keyring", "generate_key_spec"]
