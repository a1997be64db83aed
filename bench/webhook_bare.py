"""The webhook baseline: a bare handler that only verifies a Stripe signature (the official
library's WebhookSignature.verify_header, the same call billing makes, bound at import as billing
binds it) and answers 200, on the chassis HttpHost with the same settings as billing's webhook host.

    python -m bench.webhook_bare PORT SECRET
"""

from __future__ import annotations

import sys

import uvloop
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from stripe import SignatureVerificationError, WebhookSignature

from chassis.http import HttpHost


def app(secret: str) -> Starlette:
    async def verify(request: Request) -> JSONResponse:
        body = await request.body()
        try:
            WebhookSignature.verify_header(body, request.headers.get("stripe-signature", ""), secret, 300)
        except (SignatureVerificationError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"received": "verified"})

    return Starlette(routes=[Route("/webhooks/stripe/{org}/{config}", verify, methods=["POST"])])


async def main(port: int, secret: str) -> None:
    host = HttpHost("webhook-bare", app(secret), port=port)
    await host.serve_until_signalled()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1]), sys.argv[2]))
