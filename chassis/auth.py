"""Access-token verification, done locally in every service.

Access tokens are EdDSA-signed JWTs (RFC 9068 profile: header typ "at+jwt") issued by
identity. Verification pins the algorithm to EdDSA (so "none" and HMAC tokens fail), checks
issuer, audience, expiry and not-before, and finds the key by kid in identity's JWKS,
cached and refetched when an unknown kid appears: a kid seen for the first time is looked
up at once (so a freshly rotated key is accepted by its first token), the same unknown kid
at most once per `refetch_interval`, and all fetches together at most `burst` times per
interval (a flood of made-up kids cannot turn into a flood of JWKS requests).
A verified token is remembered until it expires, so a busy caller pays for the signature
check once.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable

import jwt

from chassis.context import Principal
from chassis.errors import Unauthenticated

ISSUER = "givance-identity"
AUDIENCE = "givance"
ACCESS_TOKEN_TYPE = "at+jwt"
ALGORITHM = "EdDSA"

JwksFetcher = Callable[[], Awaitable[list[dict]]]


class JwksCache:
    def __init__(self, fetch: JwksFetcher, refetch_interval: float = 5.0, burst: int = 3):
        self._fetch = fetch
        self._keys: dict[str, object] = {}
        self._refetch_interval = refetch_interval
        self._burst = burst
        self._fetches: list[float] = []  # monotonic times of the recent fetches
        self._missed: OrderedDict[str, float] = OrderedDict()  # unknown kid -> when it was last looked up
        self._lock = asyncio.Lock()

    async def key(self, kid: str):
        key = self._keys.get(kid)
        if key is not None:
            return key
        async with self._lock:
            if kid not in self._keys and self._may_fetch(kid):
                await self.refresh()
                if kid not in self._keys:
                    self._missed[kid] = time.monotonic()
                    self._missed.move_to_end(kid)
                    while len(self._missed) > 1000:
                        self._missed.popitem(last=False)
        return self._keys.get(kid)

    def _may_fetch(self, kid: str) -> bool:
        now = time.monotonic()
        missed = self._missed.get(kid)
        if missed is not None and now - missed < self._refetch_interval:
            return False  # looked for just now and not there
        self._fetches = [t for t in self._fetches if now - t < self._refetch_interval]
        return len(self._fetches) < self._burst

    async def refresh(self) -> None:
        self._fetches.append(time.monotonic())
        jwks = await self._fetch()
        self._keys = {k["kid"]: jwt.PyJWK(k, algorithm=ALGORITHM).key for k in jwks}
        self._missed.clear()


class TokenVerifier:
    def __init__(self, jwks: JwksCache, *, issuer: str = ISSUER, audience: str | tuple[str, ...] = AUDIENCE,
                 cache_size: int = 50_000, leeway: float = 0.0):
        self.jwks = jwks
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self._verified: OrderedDict[str, Principal] = OrderedDict()
        self._cache_size = cache_size
        # Further checks (revocation lists, suspended memberships) plug in here.
        self.extra_checks: list[Callable[[Principal], Awaitable[None]]] = []

    async def verify(self, token: str) -> Principal:
        principal = self._verified.get(token)
        now = time.time()
        if principal is not None and principal.expires_at > now:
            self._verified.move_to_end(token)
        else:
            principal = await self._verify_signature(token)
            self._verified[token] = principal
            if len(self._verified) > self._cache_size:
                self._verified.popitem(last=False)
        for check in self.extra_checks:
            await check(principal)
        return principal

    async def _verify_signature(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"malformed access token: {exc}") from None
        if header.get("alg") != ALGORITHM:
            raise Unauthenticated("access token must be signed with EdDSA")
        if header.get("typ") != ACCESS_TOKEN_TYPE:
            raise Unauthenticated("not an access token")
        kid = header.get("kid")
        key = await self.jwks.key(kid) if isinstance(kid, str) else None
        if key is None:
            raise Unauthenticated("access token signed by an unknown key")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=list(self.audience) if isinstance(self.audience, tuple) else self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]},
            )
            tenant = uuid.UUID(claims["org"])
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"invalid access token: {exc}") from None
        except (KeyError, ValueError, TypeError):
            raise Unauthenticated("access token names no organization") from None
        perms = claims.get("perms", [])
        return Principal(
            subject=str(claims["sub"]),
            tenant_id=tenant,
            role=str(claims.get("role", "")),
            permissions=tuple(p for p in perms if isinstance(p, str)),
            token_id=str(claims["jti"]),
            expires_at=float(claims["exp"]),
            kind=str(claims.get("kind", "user")),
            issued_at=float(claims["iat"]),
            session_id=str(claims.get("sid", "")),
            auth_time=_number(claims.get("auth_time")),
            actor=_actor(claims.get("act")),
        )

    def forget(self, token: str) -> None:
        self._verified.pop(token, None)


def audiences(service: str) -> tuple[str, ...]:
    """What a service's verifier accepts: every user's and service account's token ("givance"),
    and the tokens bound to it ("givance.<service>": a platform service's token for a tenant,
    which names only the services its permissions are for)."""
    return (AUDIENCE, f"{AUDIENCE}.{service}")


def _actor(act) -> str:
    """RFC 8693's actor claim: {"sub": "service:crm"}."""
    sub = act.get("sub") if isinstance(act, dict) else None
    return sub if isinstance(sub, str) else ""


def _number(value) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def identity_jwks_fetcher(address: str) -> JwksFetcher:
    """Fetch the JWKS from identity's GetJwks over gRPC (one channel, reused)."""
    import grpc
    from givance.identity.v1 import identity_service_pb2, identity_service_pb2_grpc
    from google.protobuf.json_format import MessageToDict

    channel: grpc.aio.Channel | None = None

    async def fetch() -> list[dict]:
        nonlocal channel
        if channel is None:
            channel = grpc.aio.insecure_channel(address)
        stub = identity_service_pb2_grpc.IdentityServiceStub(channel)
        resp = await stub.GetJwks(identity_service_pb2.GetJwksRequest(), timeout=5)
        return [MessageToDict(k, preserving_proto_field_name=True) for k in resp.keys]

    return fetch
