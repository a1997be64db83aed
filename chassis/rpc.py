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

import logging
import uuid
from collections.abc import Iterable

import grpc
from givance.options.v1 import auth_pb2
from google.protobuf import descriptor_pool
from google.rpc import code_pb2, error_details_pb2, status_pb2

from chassis import context
from chassis.auth import TokenVerifier
from chassis.errors import (
    InvalidArgument,
    PermissionDenied,
    ServiceError,
    Unauthenticated,
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
    return code, err.message, status


async def abort(ctx: grpc.aio.ServicerContext, err: ServiceError, domain: str) -> None:
    code, message, status = to_status(err, domain)
    await ctx.abort(code, message, trailing_metadata=(("grpc-status-details-bin", status.SerializeToString()),))


class ServerInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, verifier: TokenVerifier | None, service_names: Iterable[str], domain: str):
        self.verifier = verifier
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
                self._wrap_stream(handler.unary_stream, rule),
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
                self._wrap_stream(handler.stream_stream, rule),
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
                return await behavior(request, ctx)
            except ServiceError as err:
                await abort(ctx, err, self.domain)
            except (grpc.aio.AbortError, grpc.aio.UsageError):
                raise
            except Exception:  # noqa: BLE001 - a bug: INTERNAL, logged, details kept from the caller
                await self._internal(ctx)
            finally:
                context.reset(token)

        return call

    def _wrap_stream(self, behavior, rule):
        async def call(request, ctx):
            try:
                token = context.bind(await self._authenticate(rule, ctx.invocation_metadata(), ctx))
            except ServiceError as err:
                await abort(ctx, err, self.domain)
                return
            try:
                async for item in behavior(request, ctx):
                    yield item
            except ServiceError as err:
                await abort(ctx, err, self.domain)
            except (grpc.aio.AbortError, grpc.aio.UsageError):
                raise
            except Exception:  # noqa: BLE001 - a bug: INTERNAL, logged, details kept from the caller
                await self._internal(ctx)
            finally:
                context.reset(token)

        return call

    async def _internal(self, ctx: grpc.aio.ServicerContext) -> None:
        """A bug, not the caller's fault: log it whole, tell the caller only the request id."""
        request_id = context.current().request_id
        log.exception("%s: unhandled error in request %s", self.domain, request_id)
        await ctx.abort(grpc.StatusCode.INTERNAL, f"internal error (request id {request_id})")

    async def _authenticate(self, rule: auth_pb2.AuthRule, metadata, ctx) -> context.RequestContext:
        bearer = tenant_header = request_id = None
        user_agent = ""
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
        request_id = request_id or uuid.uuid4().hex
        peer = _peer_address(ctx.peer() or "")
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
