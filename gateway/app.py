"""The gateway's ASGI app: one generic handler transcodes every routed call (gateway.routes),
plus /openapi.json and /docs. Per request:

1. limits: header bytes (431), body bytes (413), rate limits per address, access token and
   tenant (429 with Retry-After; the token and tenant count only when the token verifies);
2. the route; the request message from path, query and body (gateway.transcode);
3. the call to the service that owns the method, forwarding `authorization`, `x-tenant-id`
   and `x-request-id`, and adding the caller's address as `x-forwarded-for` (the services
   trust it only from the gateway); the deadline from `grpc-timeout` or `X-Request-Timeout`;
4. the response as proto3 JSON with `ETag` when the resource has one; a server stream as
   newline-delimited JSON (`{"result": ...}` per message, `{"error": ...}` if it fails midway),
   or Server-Sent Events when the client accepts text/event-stream; a client stream (an
   upload) from a chunked body: NDJSON messages, a multipart/form-data file part, or raw bytes
   (CSV) into the request's one bytes field, in chunks; a malformed upload cancels the call and
   is a 400 naming the problem (gateway.uploads);
5. CORS per organization (gateway.cors): preflights answered here, `Access-Control-Allow-Origin`
   on a response only when the request's organization allows its Origin, `Vary: Origin` always;
6. metrics per route and status (gateway.metrics), on the /metrics endpoint beside the host.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator

import grpc
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from chassis import proxies, telemetry
from chassis.auth import TokenVerifier
from chassis.errors import ServiceError
from chassis.http import client_address
from gateway import docs, metrics, openapi, uploads
from gateway.cors import OriginPolicy
from gateway.limits import RateLimiter, retry_after
from gateway.routes import Route as RpcRoute
from gateway.routes import Router
from gateway.settings import GatewaySettings
from gateway.transcode import (
    HttpError,
    build_request,
    gateway_error,
    header_etag,
    response_etag,
    rpc_error,
    to_json,
)

log = logging.getLogger(__name__)

_TIMEOUT_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
_GRPC_TIMEOUT = re.compile(r"^(\d{1,8})([HMSmun])$")
# CORS: what a browser page may send and read (the preflight's answer and the responses').
ALLOW_HEADERS = ", ".join(("authorization", "x-tenant-id", "content-type", "idempotency-key", "if-match",
                           "x-request-id", "x-request-timeout", "grpc-timeout"))
EXPOSE_HEADERS = "etag, retry-after, x-request-id"
PREFLIGHT_MAX_AGE = "600"
# A client stream's responses are held until the upload is read to its end (so a malformed
# upload is still a plain 400), up to this many; then they stream and a later upload error
# ends the stream with an error line.
HOLD_MESSAGES = 1000


class Gateway:
    def __init__(self, settings: GatewaySettings, routes: list[RpcRoute], *, limiter: RateLimiter | None,
                 verifier: TokenVerifier | None, origins: OriginPolicy | None = None) -> None:
        self.settings = settings
        self.router = Router(routes)
        self.limiter, self.verifier = limiter, verifier
        self.origins = origins or OriginPolicy(None, platform_origins=settings.cors_origins)
        self.trusted = proxies.parse_networks(settings.trusted_proxies)
        self.channels: dict[str, grpc.aio.Channel] = {}
        self.calls: dict[str, object] = {}
        for r in routes:
            if r.service not in self.channels:
                self.channels[r.service] = grpc.aio.insecure_channel(
                    settings.backend(r.service), interceptors=telemetry.client_interceptors())
            ch = self.channels[r.service]
            kind = {(False, False): ch.unary_unary, (False, True): ch.unary_stream,
                    (True, False): ch.stream_unary, (True, True): ch.stream_stream}[
                (r.client_streaming, r.server_streaming)]
            self.calls[r.full_method] = kind(r.full_method, request_serializer=r.request_cls.SerializeToString,
                                             response_deserializer=r.response_cls.FromString)
        self.openapi = openapi.document(routes)

    async def close(self) -> None:
        for ch in self.channels.values():
            await ch.close()
        if self.limiter is not None:
            await self.limiter.close()

    # -- the one handler ---------------------------------------------------------------------
    async def handle(self, request: Request) -> Response:
        start = time.perf_counter()
        headers = header_map(request)
        request_id = headers.get("x-request-id") or uuid.uuid4().hex
        label = "unmatched"
        try:
            route, variables = self._route(request)
            label = route.label
            response = await self._handle(request, headers, request_id, route, variables)
        except HttpError as err:
            if err.http_status == 429:
                metrics.RATE_LIMITED.labels(label).inc()
            response = JSONResponse(gateway_error(err), status_code=err.http_status,
                                    headers={**err.headers, "x-request-id": request_id, "vary": "Origin"})
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
                log.warning("gateway: request %s: %s answered %s", request_id, label, exc.code().name)
            status, body = rpc_error(exc, request_id)
            response = JSONResponse(body, status_code=status, headers={"x-request-id": request_id, "vary": "Origin"})
        except Exception:
            log.exception("gateway: unhandled error in request %s", request_id)
            err = HttpError(grpc.StatusCode.INTERNAL, f"internal error (request id {request_id})")
            response = JSONResponse(gateway_error(err), status_code=500,
                                    headers={"x-request-id": request_id, "vary": "Origin"})
        tenant = headers.get("x-tenant-id", "")
        origin = headers.get("origin")
        if origin is not None and await self.origins.allowed(origin, tenant):
            response.headers["access-control-allow-origin"] = origin
            response.headers["access-control-expose-headers"] = EXPOSE_HEADERS
        metrics.observe(label, response.status_code, start, request_id, tenant)
        return response

    async def preflight(self, request: Request) -> Response:
        """OPTIONS: a CORS preflight (Origin and Access-Control-Request-Method), else as any verb
        no route has (405 with Allow). A preflight names no tenant: any organization's origin."""
        origin = request.headers.get("origin")
        wanted = request.headers.get("access-control-request-method")
        if origin is None or wanted is None:
            return await self.handle(request)
        start = time.perf_counter()
        headers = {"vary": "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"}
        try:
            verbs = self.router.verbs(request.url.path)
            if not verbs:
                raise HttpError(grpc.StatusCode.NOT_FOUND, f"no method at {request.url.path}")
            if wanted.upper() not in verbs:
                raise HttpError(grpc.StatusCode.UNIMPLEMENTED, f"{wanted} is not allowed here", http_status=405,
                                headers={"allow": ", ".join(verbs)})
            await self._rate_limit(client_address(request, self.trusted), "")
            if not await self.origins.allowed(origin, ""):
                raise HttpError(grpc.StatusCode.PERMISSION_DENIED, "this origin may not call the API from a browser",
                                reason="CORS_ORIGIN_NOT_ALLOWED")
        except HttpError as err:
            if err.http_status == 429:
                metrics.RATE_LIMITED.labels("OPTIONS").inc()
            response: Response = JSONResponse(gateway_error(err), status_code=err.http_status,
                                              headers={**err.headers, **headers})
        else:
            response = Response(status_code=204, headers={
                **headers, "access-control-allow-origin": origin, "access-control-allow-methods": ", ".join(verbs),
                "access-control-allow-headers": ALLOW_HEADERS, "access-control-max-age": PREFLIGHT_MAX_AGE})
        metrics.observe("OPTIONS", response.status_code, start)
        return response

    def _route(self, request: Request) -> tuple[RpcRoute, dict[str, str]]:
        s = self.settings
        if sum(len(k) + len(v) for k, v in request.scope["headers"]) > s.max_header_bytes:
            raise HttpError(grpc.StatusCode.INVALID_ARGUMENT, "request headers too large", http_status=431)
        scope = request.scope
        if len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"") > s.max_url_bytes:
            raise HttpError(grpc.StatusCode.INVALID_ARGUMENT, f"request URL over {s.max_url_bytes} bytes",
                            http_status=414)
        path = request.scope["path"]
        route, variables, allowed = self.router.match(request.method, path)
        if route is None:
            if allowed:
                raise HttpError(grpc.StatusCode.UNIMPLEMENTED, f"{request.method} is not allowed here",
                                http_status=405, headers={"allow": ", ".join(allowed)})
            raise HttpError(grpc.StatusCode.NOT_FOUND, f"no method at {path}")
        return route, variables

    async def _handle(self, request: Request, headers: dict[str, str], request_id: str, route: RpcRoute,
                      variables: dict[str, str]) -> Response:
        authorization = headers.get("authorization", "")
        tenant = headers.get("x-tenant-id", "")
        address = client_address(request, self.trusted)
        await self._rate_limit(address, authorization)
        metadata = [("x-request-id", request_id), ("x-forwarded-for", address)]
        if authorization:
            metadata.append(("authorization", authorization))
        if tenant:
            metadata.append(("x-tenant-id", tenant))
        timeout = self._timeout(headers, route)
        call = self.calls[route.full_method]
        if route.client_streaming:
            return await self._client_stream(request, request_id, route, call, metadata, timeout)
        body = await self._body(request, headers, route)
        query = list(request.query_params.multi_items()) if request.scope.get("query_string") else []
        msg = build_request(route, variables, query, body, headers)
        if route.server_streaming:
            return await self._stream(request, call(msg, metadata=metadata, timeout=timeout), request_id)
        response = await call(msg, metadata=metadata, timeout=timeout)
        return self._unary_response(route, response, request_id)

    async def _client_stream(self, request: Request, request_id: str, route: RpcRoute, call, metadata,
                             timeout: float) -> Response:
        """An upload: the body's messages stream to the service as they arrive. A malformed body
        cancels the call (the service sees a cancelled stream, never a short one that looks
        complete) and is answered as the 400 (or 413) that names the problem."""
        upload = uploads.Upload(uploads.messages(request, route, max_upload_bytes=self.settings.max_upload_bytes,
                                                 max_line_bytes=self.settings.max_body_bytes))
        rpc = call(upload.messages(), metadata=metadata, timeout=timeout)
        upload.call = rpc
        try:
            if route.server_streaming:
                return await self._stream(request, rpc, request_id, upload)
            response = await rpc
        except (asyncio.CancelledError, grpc.aio.AioRpcError):
            if upload.error is not None:
                raise upload.error from None
            raise
        return self._unary_response(route, response, request_id)

    def _unary_response(self, route: RpcRoute, response, request_id: str) -> Response:
        headers = {"x-request-id": request_id, "vary": "Origin"}
        etag = response_etag(route, response)
        if etag:
            headers["etag"] = header_etag(etag)
        return JSONResponse(to_json(response), headers=headers)

    async def _rate_limit(self, address: str, authorization: str) -> None:
        """429 when a bucket is empty (a preflight, with no authorization, counts per address)."""
        if self.limiter is None:
            return
        token = tenant = None
        if authorization.startswith("Bearer ") and self.verifier is not None:
            raw = authorization[7:].strip()
            try:
                principal = await self.verifier.verify(raw)
                token, tenant = raw, str(principal.tenant_id)
            except ServiceError:
                pass  # an invalid token counts against the address only; the service refuses it
        wait = await self.limiter.check(address, token, tenant)
        if wait > 0:
            raise HttpError(grpc.StatusCode.RESOURCE_EXHAUSTED, "rate limit exceeded; retry later",
                            http_status=429, headers={"retry-after": retry_after(wait)}, reason="RATE_LIMITED")

    def _timeout(self, headers: dict[str, str], route: RpcRoute) -> float:
        s = self.settings
        value = None
        raw = headers.get("grpc-timeout")
        if raw:
            m = _GRPC_TIMEOUT.match(raw.strip())
            if not m:
                raise HttpError(grpc.StatusCode.INVALID_ARGUMENT, "bad grpc-timeout header",
                                violations=[("grpc-timeout", "a number and a unit: 10S, 500m")])
            value = int(m.group(1)) * _TIMEOUT_UNITS[m.group(2)]
        raw = headers.get("x-request-timeout")
        if raw and value is None:
            try:
                value = float(raw)
            except ValueError:
                value = -1.0
            if not 0 < value < 1e9:
                raise HttpError(grpc.StatusCode.INVALID_ARGUMENT, "bad X-Request-Timeout header",
                                violations=[("x-request-timeout", "seconds, a positive number")])
        if value is None:
            value = s.stream_timeout if route.server_streaming or route.client_streaming else s.default_timeout
        return min(value, s.max_timeout)

    async def _body(self, request: Request, headers: dict[str, str], route: RpcRoute) -> bytes:
        limit = self.settings.max_body_bytes
        length = headers.get("content-length")
        if length and length.isdigit() and int(length) > limit:
            raise HttpError(grpc.StatusCode.INVALID_ARGUMENT, f"body over {limit} bytes", http_status=413)
        if not route.body:
            return b""
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HttpError(grpc.StatusCode.INVALID_ARGUMENT, f"body over {limit} bytes", http_status=413)
            chunks.append(chunk)
        return b"".join(chunks)

    async def _stream(self, request: Request, call, request_id: str, upload: uploads.Upload | None = None
                      ) -> Response:
        """A server stream: the first message is awaited here, so an error before it is a plain
        error response with its HTTP status; later errors end the stream with an error line.
        Behind an upload, messages are held until the upload is read to its end (HOLD_MESSAGES)."""
        sse = "text/event-stream" in request.headers.get("accept", "")
        held = []
        msg = await call.read()
        while upload is not None and not upload.finished and msg is not grpc.aio.EOF and len(held) < HOLD_MESSAGES:
            held.append(msg)
            msg = await call.read()

        def frame(kind: str, payload: dict) -> bytes:
            if sse:
                return f"event: {kind}\ndata: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()
            return json.dumps({kind: payload}, separators=(",", ":")).encode() + b"\n"

        async def body() -> AsyncIterator[bytes]:
            nonlocal msg
            for item in held:
                yield frame("result", to_json(item))
            try:
                while msg is not grpc.aio.EOF:
                    yield frame("result", to_json(msg))
                    msg = await call.read()
            except grpc.aio.AioRpcError as exc:
                if upload is not None and upload.error is not None:
                    yield frame("error", gateway_error(upload.error)["error"])
                else:
                    _, err = rpc_error(exc, request_id)
                    yield frame("error", err["error"])
            except asyncio.CancelledError:
                if upload is not None and upload.error is not None:  # the read of a call cancelled by the upload
                    yield frame("error", gateway_error(upload.error)["error"])
                    return
                call.cancel()
                raise

        media = "text/event-stream" if sse else "application/x-ndjson"
        return StreamingResponse(body(), media_type=media, headers={"x-request-id": request_id, "vary": "Origin"})


def header_map(request: Request) -> dict[str, str]:
    """The request's headers, decoded once into a dict (names are lower case in ASGI; of a
    repeated header the first counts, as Starlette's Headers.get has it)."""
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in reversed(request.scope["headers"])}


def create_app(gw: Gateway) -> Starlette:
    async def openapi_json(_: Request) -> Response:
        return JSONResponse(gw.openapi)

    async def docs_page(_: Request) -> Response:
        return HTMLResponse(docs.PAGE)

    routes = [
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/docs", docs_page, methods=["GET"]),
        Mount("/docs/static", app=StaticFiles(directory=docs.static_dir()), name="docs-static"),
        Route("/{path:path}", gw.handle, methods=["GET", "POST", "PATCH", "PUT", "DELETE"]),
        Route("/{path:path}", gw.preflight, methods=["OPTIONS"]),
    ]
    return Starlette(routes=routes)
