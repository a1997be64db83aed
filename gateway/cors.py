"""CORS with allowed origins per organization.

An organization lists the web origins of its front ends (`allowed_origins`, set with
`PATCH /v1/organization?update_mask=allowed_origins`; identity validates and stores them). The
gateway asks identity (`OrganizationService.CheckAllowedOrigin`, internal) and keeps each answer
for `ttl` seconds, so a change applies within that time on every replica and a request costs
no lookup while its answer is cached; a request without an Origin header (every non-browser
client) costs nothing.

- A preflight (OPTIONS with Access-Control-Request-Method) carries no credentials and no
  x-tenant-id value (only the header's name), so it cannot name the organization: it is allowed
  when ANY organization allows the origin. That lets the browser send the real request; it
  does not let the page read the answer, which is decided per request below. With bearer
  tokens (no cookies: Access-Control-Allow-Credentials is never sent) a page gains nothing from
  sending a request it cannot read and holds no token for.
- A real request gets `Access-Control-Allow-Origin: <origin>` only when the organization of
  its x-tenant-id allows the origin; a request with no x-tenant-id (sign-up, login: they name
  no tenant yet) when any organization does. Every routed response carries `Vary: Origin`.
- The deployment's own front ends (GATEWAY_CORS_ORIGINS) are allowed for every organization.

Fail closed: when identity cannot answer, the origin is refused (for `error_ttl` seconds).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable

from gateway.metrics import CORS_LOOKUPS

log = logging.getLogger(__name__)

# Cheap shape checks before any lookup: an origin as browsers serialise it, a tenant id as a UUID.
_ORIGIN_SHAPE = re.compile(r"^https?://[a-z0-9.\-]{1,253}(?::\d{1,5})?$|^https?://\[[0-9a-f:.]{2,45}\](?::\d{1,5})?$")
_UUID_SHAPE = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")

Check = Callable[[str, str], Awaitable[bool]]


class OriginPolicy:
    def __init__(self, check: Check | None, *, platform_origins: Iterable[str] = (), ttl: float = 30.0,
                 error_ttl: float = 2.0, max_entries: int = 10_000) -> None:
        self.check = check
        self.platform = frozenset(o.strip().lower().rstrip("/") for o in platform_origins if o.strip())
        self.ttl, self.error_ttl, self.max_entries = ttl, error_ttl, max_entries
        self._cache: dict[tuple[str, str], tuple[float, bool]] = {}
        self._inflight: dict[tuple[str, str], asyncio.Future] = {}
        self._down = False

    async def allowed(self, origin: str, tenant: str) -> bool:
        """Whether `origin` may read the answers for `tenant` ("": any organization)."""
        if origin in self.platform:
            return True
        key = (origin, tenant)
        hit = self._cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        if self.check is None or len(origin) > 300 or not _ORIGIN_SHAPE.match(origin) \
                or (tenant and not _UUID_SHAPE.match(tenant)):
            return False
        pending = self._inflight.get(key)
        if pending is not None:  # one lookup per key at a time; the others wait for its answer
            return await asyncio.shield(pending)
        future = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            answer, ttl = await self._lookup(origin, tenant)
            if len(self._cache) >= self.max_entries:
                self._evict()
            self._cache[key] = (time.monotonic() + ttl, answer)
            future.set_result(answer)
            return answer
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waited
            raise
        finally:
            del self._inflight[key]

    async def _lookup(self, origin: str, tenant: str) -> tuple[bool, float]:
        try:
            answer = await self.check(origin, tenant)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - identity unreachable: refuse, briefly
            CORS_LOOKUPS.labels("error").inc()
            if not self._down:
                log.warning("gateway: CORS origins unavailable (%s); refusing cross-origin reads", type(exc).__name__)
                self._down = True
            return False, self.error_ttl
        CORS_LOOKUPS.labels("allowed" if answer else "refused").inc()
        if self._down:
            log.warning("gateway: CORS origins available again")
            self._down = False
        return answer, self.ttl

    def _evict(self) -> None:
        now = time.monotonic()
        for key in [k for k, (expires, _) in self._cache.items() if expires <= now]:
            del self._cache[key]
        while len(self._cache) >= self.max_entries:  # still full: the oldest entries go
            del self._cache[next(iter(self._cache))]


def identity_origin_check(channel) -> Check:
    """Ask identity's OrganizationService.CheckAllowedOrigin over an open channel."""
    from givance.identity.v1 import organization_service_pb2 as pb
    from givance.identity.v1 import organization_service_pb2_grpc

    stub = organization_service_pb2_grpc.OrganizationServiceStub(channel)

    async def check(origin: str, tenant: str) -> bool:
        resp = await stub.CheckAllowedOrigin(pb.CheckAllowedOriginRequest(origin=origin, organization_id=tenant),
                                             timeout=2.0)
        return resp.allowed

    return check
