"""What identity's use cases share, built once in __main__ and handed to every servicer.

Use cases are plain functions. Each takes what it needs first: `db` when the database is all
it needs, `deps` when it needs more of these long-lived collaborators (signing keys, keyring,
password hasher, revocations, settings); then the caller (principal, tenant, client), passed
explicitly by the servicer; then the request's values.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from chassis.auth import TokenVerifier
from chassis.crypto import seal_event_secret
from chassis.db import Database
from chassis.errors import ResourceExhausted
from chassis.revocation import RevocationList
from services.identity import limits
from services.identity.crypto import Keyring
from services.identity.handlers.keys import SigningKeys
from services.identity.settings import IdentitySettings


class Passwords:
    """argon2id hashing off the event loop, and a dummy hash to verify against when there is no
    user, so both answers of a sign-in take alike.

    At most `slots` hashes run at once (each takes a CPU and argon2's memory); a call waits at most
    `queue_timeout` seconds for a slot, then is shed with RESOURCE_EXHAUSTED (retry later), so a
    login flood queues briefly or is refused instead of exhausting the pod's memory."""

    def __init__(self, hasher: PasswordHasher, *, slots: int = 1, queue_timeout: float = 2.0):
        self.hasher = hasher
        self.dummy_hash = hasher.hash(uuid.uuid4().hex)
        self.slots = asyncio.Semaphore(slots)
        self.queue_timeout = queue_timeout
        self.shed = 0  # calls refused for want of a slot

    async def _run(self, fn, *args):
        try:
            await asyncio.wait_for(self.slots.acquire(), timeout=self.queue_timeout)
        except TimeoutError:
            self.shed += 1
            raise ResourceExhausted("too many sign-ins at once; retry shortly", reason="PASSWORD_HASHING_BUSY",
                                    retry_after=max(1.0, self.queue_timeout)) from None
        try:
            return await asyncio.to_thread(fn, *args)
        finally:
            self.slots.release()

    async def hash(self, password: str) -> str:
        return await self._run(self.hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        try:
            return await self._run(self.hasher.verify, password_hash, password)
        except (VerificationError, InvalidHashError):
            return False


@dataclass
class Deps:
    settings: IdentitySettings
    db: Database
    keys: SigningKeys
    keyring: Keyring
    hasher: PasswordHasher
    verifier: TokenVerifier
    revocations: RevocationList
    passwords: Passwords = field(init=False)
    event_secrets: Keyring = field(init=False)  # seals links and codes in events, for comms

    def __post_init__(self) -> None:
        s = self.settings
        slots = s.argon2_max_concurrency or limits.hashing_slots(s.argon2_memory_kib)
        self.passwords = Passwords(self.hasher, slots=slots, queue_timeout=s.argon2_queue_timeout_seconds)
        self.event_secrets = Keyring(s.event_secret_keys)

    def seal_for_comms(self, event_type: str, aggregate_id: str, secret: str) -> str:
        """A link or code, sealed for comms (the event's one consumer): never in clear in the outbox."""
        return seal_event_secret(self.event_secrets, event_type, aggregate_id, secret)
