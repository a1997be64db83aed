"""Rate limits on requests that send a user a link or a code: against email bombing (password
reset, email verification to whoever's address) and SMS pumping (phone codes to premium
numbers). Each request counts against its target (the email, the phone number, the account)
and against the client's address, in fixed windows; over any limit it is refused with
RESOURCE_EXHAUSTED and the time until the window ends. A password reset counts against the
email whether or not an account has it, so the answer still reveals nothing.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass
from datetime import timedelta

from services.identity.domain.throttle import address_key


@dataclass(frozen=True)
class Rate:
    name: str
    per_target: int
    per_address: int
    window: timedelta = timedelta(hours=1)


PASSWORD_RESET = Rate("password_reset", per_target=3, per_address=20)
EMAIL_VERIFICATION = Rate("email_verification", per_target=3, per_address=20)
PHONE_CODE = Rate("phone_code", per_target=3, per_address=10)
PHONE_CODE_PER_ACCOUNT = 5  # numbers one account may have codes sent to in a window


def _hashed(value: str) -> str:
    return hashlib.sha256(unicodedata.normalize("NFKC", value).strip().lower().encode()).hexdigest()


def keys(rate: Rate, target: str, address: str) -> list[tuple[str, int]]:
    """(key, limit) pairs a request counts against: its target (hashed: the table holds no
    addresses or numbers) and the client's address, when known."""
    out = [(f"{rate.name}:{_hashed(target)}", rate.per_target)]
    where = address_key(address)
    if where:
        out.append((f"{rate.name}:{where}", rate.per_address))
    return out
