"""The public webhook HTTP endpoint (on the chassis HttpHost, 127.0.0.1:8082 by default):

    POST /webhooks/stripe/{organization_id}/{config_id}    an organization's gifts (its own account)
    POST /webhooks/razorpay/{organization_id}/{config_id}  the same through Razorpay
    POST /webhooks/platform/stripe                         the platform's own account (its revenue)

The first path names the organization and its gateway config, whose endpoint secret verifies the
Stripe-Signature header; 2xx only once the event is stored (Stripe retries anything else), 400
for a signature that does not verify, 404 for an unknown endpoint. The second is verified with
the platform's endpoint secret (handlers.platform): the two money flows never share an endpoint
or a secret."""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from chassis.crypto import Keyring
from chassis.db import Database
from chassis.http import HttpHost
from services.billing.handlers import webhooks as handlers
from services.billing.handlers.platform import PlatformEvents

log = logging.getLogger(__name__)

MAX_BODY = 512 * 1024  # Stripe's events are a few KB; a bigger body is refused unread


async def _body(request: Request) -> bytes | None:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _answer(outcome: handlers.Outcome) -> JSONResponse:
    return JSONResponse({"received" if outcome.status == 200 else "error": outcome.detail}, status_code=outcome.status)


def app(db: Database, keyring: Keyring, tolerance: int, platform: PlatformEvents | None = None) -> Starlette:
    receiver = handlers.WebhookReceiver(db, keyring, tolerance)

    async def stripe_webhook(request: Request) -> JSONResponse:
        body = await _body(request)
        if body is None:
            return JSONResponse({"error": f"the body must be at most {MAX_BODY} bytes"}, status_code=413)
        signature = request.headers.get("stripe-signature", "")
        if not signature:
            return JSONResponse({"error": "the Stripe-Signature header is missing"}, status_code=400)
        return _answer(await receiver.stripe(request.path_params["org"], request.path_params["config"], body,
                                             signature))

    async def razorpay_webhook(request: Request) -> JSONResponse:
        body = await _body(request)
        if body is None:
            return JSONResponse({"error": f"the body must be at most {MAX_BODY} bytes"}, status_code=413)
        signature = request.headers.get("x-razorpay-signature", "")
        if not signature:
            return JSONResponse({"error": "the X-Razorpay-Signature header is missing"}, status_code=400)
        return _answer(await receiver.razorpay(request.path_params["org"], request.path_params["config"], body,
                                               signature, request.headers.get("x-razorpay-event-id", "")))

    async def platform_webhook(request: Request) -> JSONResponse:
        if platform is None:
            return JSONResponse({"error": "the platform's payment webhook is not configured"}, status_code=404)
        body = await _body(request)
        if body is None:
            return JSONResponse({"error": f"the body must be at most {MAX_BODY} bytes"}, status_code=413)
        signature = request.headers.get("stripe-signature", "")
        if not signature:
            return JSONResponse({"error": "the Stripe-Signature header is missing"}, status_code=400)
        return _answer(await platform.receive(body, signature))

    return Starlette(routes=[Route("/webhooks/stripe/{org}/{config}", stripe_webhook, methods=["POST"]),
                             Route("/webhooks/razorpay/{org}/{config}", razorpay_webhook, methods=["POST"]),
                             Route("/webhooks/platform/stripe", platform_webhook, methods=["POST"])])


class WebhookServer:
    """The webhook HTTP host beside the gRPC server (a worker: run() and stop())."""

    def __init__(self, db: Database, keyring: Keyring, *, host: str, port: int, tolerance: int,
                 grace_seconds: float = 10.0, platform: PlatformEvents | None = None):
        self.http = HttpHost("billing-webhooks", app(db, keyring, tolerance, platform), host=host, port=port,
                             readiness=[db.ping], grace_seconds=grace_seconds)
        self._started = False

    @property
    def port(self) -> int:
        return self.http.bound_port

    async def run(self) -> None:
        await self.http.start()
        self._started = True

    async def stop(self) -> None:
        if self._started:
            await self.http.stop()
