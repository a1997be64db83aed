"""crm's public HTTP (on the chassis HTTP host): what people without an account open from a
signed link.

- GET  /shared/{token}: a client downloads the document the link was made for (its current
  version, streamed; Content-Type is the detected type, X-Content-SHA256 its hash);
- GET  /sign/{token}: what a contact is asked to sign (document, version, SHA-256);
- POST /sign/{token} {"intent": "..."}: the contact signs, the intent and their address recorded.

A bad, altered, expired or revoked link is 404 (never which of them). Every open is audited.
"""

from __future__ import annotations

import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from chassis.errors import InvalidArgument
from chassis.http import client_address
from services.crm.handlers import document_access, signatures
from services.crm.handlers import documents as handlers
from services.crm.handlers.documents import DocumentDeps

MAX_BODY = 16 * 1024


def _gone() -> Response:
    return PlainTextResponse("this link is not valid (it may have expired)", status_code=404)


def app(deps: DocumentDeps) -> Starlette:
    async def shared(request: Request) -> Response:
        version = await document_access.open_link(deps, request.path_params["token"], client_address(request))
        if version is None:
            return _gone()
        filename = version["filename"].replace('"', "")
        return StreamingResponse(handlers.stream(deps, version), media_type=version["mime_type"], headers={
            "Content-Length": str(version["size_bytes"]), "X-Content-SHA256": version["sha256"],
            "Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})

    async def to_sign(request: Request) -> Response:
        info = await signatures.signing_request(deps, request.path_params["token"])
        return _gone() if info is None else JSONResponse(info)

    async def sign(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY:
            return JSONResponse({"error": f"body over {MAX_BODY} bytes"}, status_code=413)
        try:
            intent = json.loads(body or b"{}").get("intent", "")
            if not isinstance(intent, str):
                raise ValueError
        except (ValueError, AttributeError):
            return JSONResponse({"error": "send JSON: {\"intent\": \"...\"}",
                                 "field_violations": [{"field": "intent", "description": "is required"}]},
                                status_code=400)
        try:
            signed = await signatures.sign_by_link(deps, request.path_params["token"], intent,
                                                 client_address(request), request.headers.get("user-agent", "")[:500])
        except InvalidArgument as exc:
            return JSONResponse({"error": exc.message, "field_violations": [
                {"field": f, "description": d} for f, d in exc.violations]}, status_code=400)
        if signed is None:
            return _gone()
        return JSONResponse({"signature_id": str(signed["id"]), "status": signed["status"],
                             "document_sha256": signed["document_sha256"],
                             "sign_time": signed["signed_at"].isoformat()})

    return Starlette(routes=[Route("/shared/{token}", shared, methods=["GET"]),
                             Route("/sign/{token}", to_sign, methods=["GET"]),
                             Route("/sign/{token}", sign, methods=["POST"])])
