"""Login throttling: back-off per account and per client address.

Failures are counted per account (by normalised email, whether an account has it or not, so
the throttle reveals nothing) and per client address. From the MAX_FAILURES-th failure within
WINDOW (counted from the last failure) the key is locked for 2^(n - MAX_FAILURES) seconds, n
the failure count, capped at MAX_LOCK. Attempts while locked are refused without looking at
the password, and count as failures (a running attack keeps doubling its wait). A successful
sign-in clears the account's count; an address's count only runs out (one good account must
not clear an address that tries many). An address gets a higher allowance: many people may
share one (an office, a carrier NAT).
"""

from __future__ import annotations

import hashlib
import ipaddress
import unicodedata
from dataclasses import dataclass
from datetime import timedelta

WINDOW = timedelta(hours=1)
MAX_LOCK = timedelta(minutes=15)


@dataclass(frozen=True)
class Limit:
    max_failures: int

    def lock_for(self, failures: int) -> timedelta | None:
        """How long the key stays locked after its `failures`-th failure (None: not locked)."""
        if failures < self.max_failures:
            return None
        exponent = failures - self.max_failures
        if exponent >= 20:  # far past the cap; keeps the number small
            return MAX_LOCK
        return min(timedelta(seconds=2**exponent), MAX_LOCK)


ACCOUNT = Limit(max_failures=5)
ADDRESS = Limit(max_failures=50)


def account_key(email: str) -> str:
    """The throttle key of an account: a hash of the normalised email (the table holds no addresses
    an attacker typed)."""
    normalized = unicodedata.normalize("NFKC", email).strip().lower()
    return "account:" + hashlib.sha256(normalized.encode()).hexdigest()


def address_key(peer: str) -> str | None:
    """The throttle key of a client address; an IPv6 address counts by its /64 (one subscriber's
    network hands out any address in it). None when the address is not known."""
    peer = peer.strip()
    if not peer:
        return None
    try:
        ip = ipaddress.ip_address(peer)
    except ValueError:
        return f"address:{peer[:100]}"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return f"address:{ip.ipv4_mapped}"
        if ip.is_loopback:
            return f"address:{ip}"
        return f"address:{ipaddress.ip_network(f'{ip}/64', strict=False)}"
    return f"address:{ip}"
