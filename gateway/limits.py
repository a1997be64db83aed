"""Rate limits at the edge, kept in Redis so every gateway replica shares them.

Token buckets, one per caller address, per access token and per tenant, checked together in
one Lua script (atomic, one round trip): a request takes one token from each bucket that
applies, and is refused (429 with Retry-After) when any is empty, taking nothing then. A
bucket holds `burst` tokens and refills at `rate` per second; Redis' clock (TIME) is the only
clock, so replicas with skewed clocks agree. Keys expire once a bucket would be full again.

When Redis is unreachable the limiter lets requests through (and logs it once per outage):
the services' own limits still hold, and an edge cache must not take the API down.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# KEYS: bucket keys; ARGV: for each key its rate (tokens/s) then its burst. Returns 0 when
# allowed, else the milliseconds until the emptiest refused bucket has a token again.
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait = 0
local state = {}
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i - 1]) / 1000
  local burst = tonumber(ARGV[2 * i])
  local v = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(v[1]) or burst
  local ts = tonumber(v[2]) or now
  tokens = math.min(burst, tokens + (now - ts) * rate)
  if tokens < 1 then
    local w = math.ceil((1 - tokens) / rate)
    if w > wait then wait = w end
  end
  state[i] = tokens
end
if wait > 0 then return wait end
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i - 1]) / 1000
  local burst = tonumber(ARGV[2 * i])
  redis.call('HSET', key, 'tokens', state[i] - 1, 'ts', now)
  redis.call('PEXPIRE', key, math.ceil(burst / rate) + 1000)
end
return 0
"""


@dataclass(frozen=True)
class Limit:
    rate: float  # tokens per second
    burst: int


class RateLimiter:
    def __init__(self, url: str, *, per_address: Limit, per_token: Limit, per_tenant: Limit,
                 prefix: str = "givance:gateway:rl") -> None:
        self.redis = aioredis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.script = self.redis.register_script(_SCRIPT)
        self.per_address, self.per_token, self.per_tenant = per_address, per_token, per_tenant
        self.prefix = prefix
        self._down = False

    async def check(self, address: str, token: str | None, tenant: str | None) -> float:
        """0 when the request may go on, else the seconds to wait (Retry-After)."""
        keys, args = [], []
        for kind, value, limit in (("addr", address, self.per_address),
                                   ("token", token and hashlib.sha256(token.encode()).hexdigest()[:32],
                                    self.per_token),
                                   ("tenant", tenant, self.per_tenant)):
            if value and limit.rate > 0:
                keys.append(f"{self.prefix}:{kind}:{value}")
                args += [limit.rate, limit.burst]
        if not keys:
            return 0.0
        try:
            wait_ms = await self.script(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            if not self._down:
                log.warning("gateway: rate limits off, Redis is unreachable: %s", type(exc).__name__)
                self._down = True
            return 0.0
        if self._down:
            log.warning("gateway: Redis is back, rate limits on again")
            self._down = False
        return int(wait_ms) / 1000.0

    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        await self.redis.aclose()


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
