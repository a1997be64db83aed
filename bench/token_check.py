"""What the server interceptor costs each call, measured in this process.

    bench token_check: N us/call first=F cached=C

N is chassis.rpc.ServerInterceptor's wrapped handler around a no-op behavior (CRM's
GetDonor rule, crm.donors.read), called with a fake servicer context carrying the metadata
a real call carries (bearer token, x-tenant-id, user-agent) and a peer, minus the same loop
calling the no-op behavior directly: reading the metadata, the token check, the tenant and
permission checks, binding the request context. The token is the one identity issued to the
seeded organization's owner, and the verifier is built as the services build it (a
TokenVerifier over a JwksCache fetching identity's JWKS, plus the revocation check), so
after the first call the token comes from the verifier's cache, as it does for a busy caller.

`first` and `cached` are TokenVerifier.verify alone, in microseconds per token: `first`
averaged over FIRST_TOKENS distinct, never-seen tokens (the signature check: the cost each
new token pays once), `cached` for one token verified again and again. The distinct tokens
carry the claims of identity's token with a fresh jti each, signed by a key made here with
identity's header and JWK (identity's private key stays in identity); that key's JWK is
served beside identity's, so its kid is already known, as a live key's is.
Each figure is the best of REPEATS passes (noise only ever adds time).
"""

from __future__ import annotations

import base64
import time
import uuid
from dataclasses import dataclass

import grpc
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from chassis.auth import ACCESS_TOKEN_TYPE, ALGORITHM, JwksCache, TokenVerifier, identity_jwks_fetcher
from chassis.revocation import RevocationList
from chassis.rpc import ServerInterceptor

SERVICE = "givance.crm.v1.DonorService"
METHOD = f"/{SERVICE}/GetDonor"
USER_AGENT = f"grpc-python-asyncio/{grpc.__version__} grpc-c/45.0.0 (linux; chttp2)"
CALLS = 20_000  # per pass, for the per-call figure and `cached`
FIRST_TOKENS = 500  # per pass, for `first`
REPEATS = 4


@dataclass
class TokenCheck:
    per_call_us: float
    first_us: float
    cached_us: float


class _Refused(Exception):
    pass


class _Context:
    """The parts of grpc.aio.ServicerContext the interceptor uses."""

    def __init__(self, metadata: tuple[tuple[str, str], ...]):
        self._metadata = metadata

    def invocation_metadata(self):
        return self._metadata

    def peer(self) -> str:
        return "ipv4:127.0.0.1:50514"

    async def abort(self, code, details, trailing_metadata=()):
        raise _Refused(f"{code.name}: {details}")


class _Details:
    method = METHOD
    invocation_metadata = None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class _BenchKey:
    """An Ed25519 signing key with identity's JWK shape and token header."""

    def __init__(self) -> None:
        self.kid = f"bench{uuid.uuid4().hex[:11]}"
        self._private = Ed25519PrivateKey.generate()
        pub = self._private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.jwk = {"kty": "OKP", "crv": "Ed25519", "x": _b64(pub), "kid": self.kid, "alg": ALGORITHM, "use": "sig"}

    def sign(self, claims: dict) -> str:
        return jwt.encode(claims, self._private, algorithm=ALGORITHM,
                          headers={"kid": self.kid, "typ": ACCESS_TOKEN_TYPE})


async def _noop(request, ctx):
    return request


async def _time_calls(call, request, ctx, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        await call(request, ctx)
    return (time.perf_counter() - t0) / n * 1e6


async def _time_verify(verifier: TokenVerifier, tokens: list[str]) -> float:
    t0 = time.perf_counter()
    for token in tokens:
        await verifier.verify(token)
    return (time.perf_counter() - t0) / len(tokens) * 1e6


async def measure(identity_address: str, org_id: str, access_token: str) -> TokenCheck:
    identity_jwks = await identity_jwks_fetcher(identity_address)()
    bench_key = _BenchKey()

    async def fetch() -> list[dict]:
        return [*identity_jwks, bench_key.jwk]

    verifier = TokenVerifier(JwksCache(fetch))
    verifier.extra_checks.append(RevocationList().check)  # as identity and crm build theirs
    interceptor = ServerInterceptor(verifier, [SERVICE], "crm")

    async def continuation(details):
        return grpc.unary_unary_rpc_method_handler(_noop)

    wrapped = (await interceptor.intercept_service(continuation, _Details())).unary_unary
    ctx = _Context((("authorization", f"Bearer {access_token}"), ("x-tenant-id", org_id),
                    ("user-agent", USER_AGENT)))
    request = object()
    if await wrapped(request, ctx) is not request:  # the first call verifies (and fetches the JWKS)
        raise RuntimeError("token_check: the interceptor did not call through")

    claims = jwt.decode(access_token, options={"verify_signature": False})
    per_call = direct = cached = first = float("inf")
    for _ in range(REPEATS):
        per_call = min(per_call, await _time_calls(wrapped, request, ctx, CALLS))
        direct = min(direct, await _time_calls(_noop, request, ctx, CALLS))
        cached = min(cached, await _time_verify(verifier, [access_token] * CALLS))
        fresh = [bench_key.sign({**claims, "jti": uuid.uuid4().hex}) for _ in range(FIRST_TOKENS)]
        first = min(first, await _time_verify(verifier, fresh))
    return TokenCheck(per_call_us=per_call - direct, first_us=first, cached_us=cached)
