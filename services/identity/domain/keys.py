"""Signing-key rules: who may rotate, how long a retired key stays published, how many.

One key signs every organization's tokens, so rotating it is a platform operation: only a
platform operator holds the permission (services/identity/handlers/platform.py); no tenant
role, not even an owner's "*", covers it.
"""

from __future__ import annotations

ROTATE_PERMISSION = "platform.signing_keys.rotate"

# A replica notices a rotation made by another one when it next reloads the active key.
RELOAD_SECONDS = 60.0
# Clocks of the replicas may disagree by this much.
CLOCK_SKEW_SECONDS = 60.0
# Every rotation keeps the retired key published for a while; this bounds the JWKS.
MAX_PUBLISHED_KEYS = 10


def keep_published_seconds(access_ttl: float) -> float:
    """A retired key signed its last token at most RELOAD_SECONDS after retirement (another
    replica had not reloaded yet); that token expires access_ttl later."""
    return access_ttl + RELOAD_SECONDS + CLOCK_SKEW_SECONDS
