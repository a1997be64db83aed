"""A service's tokens for acting for a tenant, with no caller (jobs, workflow steps, consumers).

Each service may hold a platform service principal: its own credential (client id = its name,
and a secret), created by an operator (`python -m services.identity.principals create`), never
by a tenant. identity trades it for a short-lived access token of ONE organization
(TenantTokenService.IssueTenantToken), carrying only what the principal was granted, accepted
only by the services those permissions belong to, and naming the service as its actor in every
audit entry. Every service verifies it as any access token; row-level security applies as for
any token of that tenant.

    tokens = TenantTokens.from_settings(settings)          # None when the service has no principal
    metadata = await tokens.metadata(organization_id)      # (("authorization", "Bearer ..."), ("x-tenant-id", org))
    await stub.SendMessage(request, metadata=metadata)

`metadata` is an `async (organization_id) -> metadata` callable, the shape a job is handed.
Tokens are cached per tenant (at most `max_tenants`, least recently used dropped) and fetched
again `refresh_margin` seconds before they expire (at most half their lifetime); concurrent
calls for one tenant share one request to identity (single flight). Failures raise chassis
errors: Unauthenticated (bad or revoked credential), NotFound (no such organization, or it was
removed), PermissionDenied (a permission the principal was not granted), Unavailable (identity
could not be reached: try again). None is cached.

Development runs (`make run`, the tests) give each service that declares
`principal_permissions` a principal with a development secret (`dev_principals`, and
tools/devprincipals.py creates them at identity).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass

import grpc

from chassis.errors import NotFound, PermissionDenied, ServiceError, Unauthenticated, Unavailable

Metadata = tuple[tuple[str, str], ...]

_ERRORS: dict[grpc.StatusCode, type[ServiceError]] = {
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
}


@dataclass(frozen=True, slots=True)
class _Cached:
    token: str
    expires_at: float  # epoch seconds
    refresh_at: float


class TenantTokens:
    def __init__(self, identity_address: str, client_id: str, client_secret: str, *,
                 permissions: Sequence[str] = (), refresh_margin: float = 60.0, max_tenants: int = 10_000,
                 timeout: float = 5.0, clock: Callable[[], float] = time.time):
        if not client_id or not client_secret:
            raise ValueError("a service principal needs a client id and a secret")
        self.identity_address = identity_address
        self.client_id = client_id
        self._secret = client_secret
        self.permissions = tuple(permissions)  # empty: the principal's whole grant
        self.refresh_margin = refresh_margin
        self.max_tenants = max_tenants
        self.timeout = timeout
        self.clock = clock
        self.exchanges = 0  # tokens fetched from identity (tests, metrics)
        self._cache: OrderedDict[uuid.UUID, _Cached] = OrderedDict()
        self._inflight: dict[uuid.UUID, asyncio.Task[_Cached]] = {}
        self._channel: grpc.aio.Channel | None = None

    @classmethod
    def from_settings(cls, settings, **kwargs) -> TenantTokens | None:
        """The service's tokens from its settings (<PREFIX>PRINCIPAL_CLIENT_ID and _SECRET, and
        IDENTITY_ADDRESS), or None when it has no principal configured."""
        if not settings.principal_client_id or not settings.principal_client_secret:
            return None
        return cls(settings.identity_address, settings.principal_client_id, settings.principal_client_secret,
                   **kwargs)

    async def metadata(self, organization_id: uuid.UUID | str) -> Metadata:
        """gRPC metadata acting for the organization: its token and its tenant id."""
        org = _org(organization_id)
        return (("authorization", f"Bearer {await self.token(org)}"), ("x-tenant-id", str(org)))

    async def token(self, organization_id: uuid.UUID | str) -> str:
        org = _org(organization_id)
        cached = self._cache.get(org)
        if cached is not None and self.clock() < cached.refresh_at:
            self._cache.move_to_end(org)
            return cached.token
        task = self._inflight.get(org)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._exchange(org))
            self._inflight[org] = task
            task.add_done_callback(lambda t, org=org: self._done(org, t))
        # shielded: one caller cancelled does not cancel the exchange the others wait for
        try:
            return (await asyncio.shield(task)).token
        except Unavailable:
            if cached is not None and self.clock() < cached.expires_at - 1.0:
                return cached.token  # identity is down: the token in hand is still good for a while
            raise

    def forget(self, organization_id: uuid.UUID | str) -> None:
        """Drop the tenant's cached token (a service refused it: the next call fetches another)."""
        self._cache.pop(_org(organization_id), None)

    def __len__(self) -> int:
        return len(self._cache)

    def _done(self, org: uuid.UUID, task: asyncio.Task[_Cached]) -> None:
        if self._inflight.get(org) is task:
            del self._inflight[org]
        if task.cancelled() or task.exception() is not None:  # retrieved: nobody may be waiting
            return
        self._cache[org] = task.result()
        self._cache.move_to_end(org)
        while len(self._cache) > self.max_tenants:
            self._cache.popitem(last=False)

    async def _exchange(self, org: uuid.UUID) -> _Cached:
        from givance.identity.v1 import tenant_token_service_pb2 as pb
        from givance.identity.v1 import tenant_token_service_pb2_grpc

        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(self.identity_address)
        stub = tenant_token_service_pb2_grpc.TenantTokenServiceStub(self._channel)
        try:
            resp = await stub.IssueTenantToken(pb.IssueTenantTokenRequest(
                client_id=self.client_id, client_secret=self._secret, organization_id=str(org),
                permissions=list(self.permissions)), timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            error = _ERRORS.get(exc.code(), Unavailable)
            raise error(f"identity refused a token of {self.client_id} for organization {org}: "
                        f"{exc.code().name}: {exc.details()}") from None
        self.exchanges += 1
        now = self.clock()
        expires_at = resp.expire_time.ToNanoseconds() / 1e9
        margin = min(self.refresh_margin, max(expires_at - now, 0.0) / 2)
        return _Cached(resp.access_token, expires_at, expires_at - margin)

    async def close(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
        if self._channel is not None:
            await self._channel.close()
            self._channel = None


def _org(value: uuid.UUID | str) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


DEV_FLAG = "GIVANCE_DEV_PRINCIPALS"


def dev_secret(service: str) -> str:
    return f"dev-principal-{service}"


def dev_principals(services: Sequence[str], environ: MutableMapping[str, str]) -> dict[str, tuple[str, ...]]:
    """Development runs (`make run` and the tests set GIVANCE_DEV_PRINCIPALS=1): every listed
    service whose settings declare `principal_permissions` and that has no
    <SERVICE>_PRINCIPAL_CLIENT_SECRET gets the development credential (its name, and
    `dev-principal-<service>`) in `environ`, for its process to read. Returns the services given
    one and what each is to be granted (tools/devprincipals.py creates them at identity)."""
    from chassis.spec import load

    if environ.get(DEV_FLAG) != "1":
        return {}
    out: dict[str, tuple[str, ...]] = {}
    for service in services:
        permissions = load(service).settings.principal_permissions
        if not permissions:
            continue
        prefix = f"{service.upper()}_PRINCIPAL_CLIENT_"
        if environ.get(prefix + "SECRET"):
            continue  # the operator's own credential
        environ[prefix + "ID"] = service
        environ[prefix + "SECRET"] = dev_secret(service)
        out[service] = tuple(permissions)
    return out
