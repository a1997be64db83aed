"""The server interceptor every service runs, and the error model on the wire.

For each call it: reads the method's AuthRule from the descriptor (`givance.options.v1.auth`);
for a non-public method verifies `authorization: Bearer <token>` (UNAUTHENTICATED if absent
or bad), checks `x-tenant-id` against the token's organization and the method's permission
against the token (PERMISSION_DENIED); binds tenant, principal and request id to the request
context; and turns chassis.errors into canonical codes with google.rpc.Status details
(BadRequest field violations, ErrorInfo with an UPPER_SNAKE reason and the service as domain).
Methods outside Givance's protos (health, reflection) are public; a Givance method without
a rule is refused (fail closed).
"""

from __future__ import annotations

import contextvars
import inspect
import logging
import uuid
from collections.abc import Iterable

import grpc
from givance.options.v1 import auth_pb2
from google.protobuf import descriptor_pool
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2

from chassis import context, faults, inputs, proxies
from chassis.auth import TokenVerifier
from chassis.errors import (
    DeadlineExceeded,
    InvalidArgument,
    PermissionDenied,
    ServiceError,
    Unauthenticated,
    Unavailable,
)

log = logging.getLogger(__name__)

_PUBLIC = auth_pb2.AuthRule(public=True)
_UNDECLARED = auth_pb2.AuthRule(permission="")


def auth_rules(service_names: Iterable[str]) -> dict[str, auth_pb2.AuthRule | None]:
    """Method path -> AuthRule (None when the method declares none)."""
    pool = descriptor_pool.Default()
    rules: dict[str, auth_pb2.AuthRule | None] = {}
    for name in service_names:
        service = pool.FindServiceByName(name)
        for method in service.methods:
            opts = method.GetOptions()
            rule = opts.Extensions[auth_pb2.auth] if opts.HasExtension(auth_pb2.auth) else None
            rules[f"/{name}/{method.name}"] = rule
    return rules


def to_status(err: ServiceError, domain: str) -> tuple[grpc.StatusCode, str, status_pb2.Status]:
    code = grpc.StatusCode[err.code]
    status = status_pb2.Status(code=getattr(code_pb2, err.code), message=err.message)
    if isinstance(err, InvalidArgument):
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=f, description=d) for f, d in err.violations
            ]
        )
        status.details.add().Pack(bad)
    if err.reason:
        info = error_details_pb2.ErrorInfo(reason=err.reason, domain=domain, metadata=err.metadata)
        status.details.add().Pack(info)
    retry_after = getattr(err, "retry_after", None)
    if retry_after is not None:
        retry = error_details_pb2.RetryInfo()
        retry.retry_delay.FromNanoseconds(int(max(1.0, retry_after) * 1e9))
        status.details.add().Pack(retry)
    return code, err.message, status


async def abort(ctx: grpc.aio.ServicerContext, err: ServiceError, domain: str) -> None:
    code, message, status = to_status(err, domain)
    await ctx.abort(code, message, trailing_metadata=(("grpc-status-details-bin", status.SerializeToString()),))


def _checked(request):
    """The request with its hostile values refused (chassis.inputs). A client stream is left to
    its handler, which refuses a bad message alone (an import rejects one row, not the file)."""
    if isinstance(request, Message):
        inputs.check(request)
    return request


class ServerInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, verifier: TokenVerifier | None, service_names: Iterable[str], domain: str,
                 trusted_proxies: tuple[proxies.Network, ...] = ()):
        self.verifier = verifier
        self.trusted_proxies = trusted_proxies
        self.rules = auth_rules(service_names)
        self.domain = domain
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(self, continuation, details: grpc.HandlerCallDetails):
        method = details.method
        cached = self._wrapped.get(method)
        if cached is not None:
            return cached
        handler = await continuation(details)
        if handler is None:
            return None
        rule = self.rules[method] if method in self.rules else _PUBLIC
        if rule is None or not (rule.public or rule.permission):
            rule = _UNDECLARED  # fail closed: nobody may call it
        # Built once per method; each call reads its own metadata from the servicer context.
        if handler.unary_unary:
            wrapped = grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(handler.unary_unary, rule),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        elif handler.unary_stream:
            wrapped = grpc.unary_stream_rpc_method_handler(
                self._wrap_streaming(handler.unary_stream, rule),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        elif handler.stream_unary:
            wrapped = grpc.stream_unary_rpc_method_handler(
                self._wrap_unary(handler.stream_unary, rule),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        else:
            wrapped = grpc.stream_stream_rpc_method_handler(
                self._wrap_streaming(handler.stream_stream, rule),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        self._wrapped[method] = wrapped
        return wrapped

    def _wrap_unary(self, behavior, rule):
        async def call(request, ctx):
            try:
                token = context.bind(await self._authenticate(rule, ctx.invocation_metadata(), ctx))
            except ServiceError as err:
                await abort(ctx, err, self.domain)
                return None
            try:
                return await behavior(_checked(request), ctx)
            except Exception as exc:  # noqa: BLE001 - answered by _failed
                await self._failed(ctx, exc)
            finally:
                context.reset(token)

        return call

    def _wrap_streaming(self, behavior, rule):
        """A streaming handler is an async generator, or a coroutine that writes with
        context.write (grpc's health Watch): each keeps its own shape."""
        if inspect.isasyncgenfunction(behavior):
            return self._wrap_stream(behavior, rule)
        return self._wrap_unary(behavior, rule)

    def _wrap_stream(self, behavior, rule):
        async def call(request, ctx):
            token = await self._begin(rule, ctx)
            if token is None:
                return
            # No reset here: this generator may be finalised (aclose) from another task and so
            # another Context, where resetting the token raises; the binding lives in the RPC's
            # own task, which grpc.aio creates per call, and ends with it.
            del token
            try:
                async for item in behavior(_checked(request), ctx):
                    yield item
            except Exception as exc:  # noqa: BLE001 - answered by _failed
                await self._failed(ctx, exc)

        return call

    async def _begin(self, rule: auth_pb2.AuthRule, ctx: grpc.aio.ServicerContext) -> contextvars.Token | None:
        """Authenticates the call and binds its context (the token resets it); None when it was refused.
        (The unary wrapper, every request's path, does the same inline: no extra await per call.)"""
        try:
            return context.bind(await self._authenticate(rule, ctx.invocation_metadata(), ctx))
        except ServiceError as err:
            await abort(ctx, err, self.domain)
            return None

    async def _failed(self, ctx: grpc.aio.ServicerContext, exc: Exception) -> None:
        """How a call that raised is answered: a ServiceError with its status; grpc's own abort
        goes on; an outage of the database or broker is UNAVAILABLE (retryable, logged without a
        trace); anything else is a bug: logged whole, the caller told only the request id."""
        if isinstance(exc, ServiceError):
            await abort(ctx, exc, self.domain)
            return
        if isinstance(exc, grpc.aio.AbortError | grpc.aio.UsageError):
            raise exc
        request_id = context.current().request_id
        if faults.is_transient(exc):
            log.warning("%s: request %s: a backing service is unavailable: %s", self.domain, request_id,
                        type(exc).__name__)
            await abort(ctx, Unavailable(f"a backing service is unavailable; retry (request id {request_id})",
                                         reason="BACKEND_UNAVAILABLE"), self.domain)
            return
        if faults.is_statement_timeout(exc):  # the work ran past the database's statement_timeout
            log.warning("%s: request %s: a statement ran past its time limit", self.domain, request_id)
            await abort(ctx, DeadlineExceeded(f"the request took too long and was stopped (request id {request_id})",
                                              reason="STATEMENT_TIMEOUT"), self.domain)
            return
        log.exception("%s: unhandled error in request %s", self.domain, request_id)
        await ctx.abort(grpc.StatusCode.INTERNAL, f"internal error (request id {request_id})")

    async def _authenticate(self, rule: auth_pb2.AuthRule, metadata, ctx) -> context.RequestContext:
        bearer = tenant_header = request_id = None
        user_agent = ""
        forwarded: list[str] = []
        for item in metadata or ():
            key = item[0]
            if key == "authorization":
                bearer = item[1]
            elif key == "x-tenant-id":
                tenant_header = item[1]
            elif key == "x-request-id":
                request_id = item[1]
            elif key == "user-agent":
                user_agent = item[1]
            elif key == "x-forwarded-for":
                forwarded.append(item[1])
        request_id = request_id or uuid.uuid4().hex
        peer = proxies.client_address(_peer_address(ctx.peer() or ""), forwarded, self.trusted_proxies)
        if rule.public:
            return context.RequestContext(tenant_id=None, principal=None, request_id=request_id, peer=peer,
                                          user_agent=user_agent)
        if rule is _UNDECLARED:
            raise PermissionDenied("this method declares no permission", reason="PERMISSION_UNDECLARED")
        if not bearer or not bearer.startswith("Bearer ") or self.verifier is None:
            raise Unauthenticated("missing bearer token in 'authorization' metadata")
        raw = bearer[7:].strip()
        principal = await self.verifier.verify(raw)
        if not tenant_header:
            raise PermissionDenied("missing 'x-tenant-id' metadata", reason="TENANT_REQUIRED")
        try:
            tenant = uuid.UUID(tenant_header)
        except ValueError:
            raise PermissionDenied("'x-tenant-id' is not an organization id", reason="TENANT_INVALID") from None
        if tenant != principal.tenant_id:
            raise PermissionDenied("the token does not grant this organization", reason="TENANT_MISMATCH")
        if not principal.can(rule.permission):
            raise PermissionDenied(f"missing permission {rule.permission}", reason="PERMISSION_MISSING",
                                   metadata={"permission": rule.permission})
        return context.RequestContext(tenant_id=tenant, principal=principal, request_id=request_id, token=raw,
                                      peer=peer, user_agent=user_agent)


def _peer_address(peer: str) -> str:
    """'ipv4:10.0.0.7:53122' -> '10.0.0.7'; 'ipv6:[::1]:5000' -> '::1'."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rsplit(":", 1)[0]
    if kind == "ipv6":
        return rest.rsplit(":", 1)[0].strip("[]")
    return rest or peer
