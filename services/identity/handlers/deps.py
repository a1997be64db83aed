"""What identity's handlers share, built once in __main__.build()."""

from __future__ import annotations

from dataclasses import dataclass

from argon2 import PasswordHasher

from chassis.auth import TokenVerifier
from chassis.crypto import Keyring
from chassis.db import Database
from chassis.revocation import RevocationList
from services.identity.handlers.keys import SigningKeys
from services.identity.settings import IdentitySettings


@dataclass
class Deps:
    settings: IdentitySettings
    db: Database
    keys: SigningKeys
    keyring: Keyring
    hasher: PasswordHasher
    verifier: TokenVerifier
    revocations: RevocationList
