"""A local server speaking Meta's WhatsApp Cloud API wire format (Graph API
`POST /v21.0/<phone-number-id>/messages` with a bearer token), standing in for it in the tests:
comms' WhatsAppCloud provider sends the ai assistant's replies to it. It keeps what it was sent
(`sent`, each a JSON body), refuses a wrong token (401, as Graph does) and answers 429 for the
next `fail_next` requests (the provider retries those)."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from chassis.http import HttpHost

PHONE_NUMBER_ID = "106540352242922"
ACCESS_TOKEN = "test-whatsapp-cloud-token"


@dataclass
class CloudApi:
    sent: list[dict[str, Any]] = field(default_factory=list)
    fail_next: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    host: HttpHost | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.host.bound_port}/v21.0"

    def to(self, phone: str) -> list[dict[str, Any]]:
        """What was sent to an E.164 number."""
        return [m for m in self.sent if m.get("to") == phone.lstrip("+")]

    def app(self) -> Starlette:
        async def messages(request: Request) -> JSONResponse:
            if request.headers.get("authorization") != f"Bearer {ACCESS_TOKEN}":
                return JSONResponse({"error": {"message": "Invalid OAuth access token.", "type": "OAuthException",
                                               "code": 190}}, status_code=401)
            if request.path_params["phone_number_id"] != PHONE_NUMBER_ID:
                return JSONResponse({"error": {"message": "Unsupported post request.", "code": 100}}, status_code=400)
            if self.fail_next > 0:
                self.fail_next -= 1
                return JSONResponse({"error": {"message": "rate limit hit", "code": 130429}}, status_code=429)
            body = await request.json()
            if body.get("messaging_product") != "whatsapp" or body.get("type") != "text":
                return JSONResponse({"error": {"message": "(#100) Invalid parameter", "code": 100}}, status_code=400)
            self.sent.append(body)
            self.arrived.set()
            return JSONResponse({"messaging_product": "whatsapp", "contacts": [{"input": body["to"],
                                                                                  "wa_id": body["to"]}],
                                 "messages": [{"id": f"wamid.{secrets.token_hex(16)}"}]})

        return Starlette(routes=[Route("/v21.0/{phone_number_id}/messages", messages, methods=["POST"])])

    async def start(self) -> CloudApi:
        self.host = HttpHost("whatsapp-cloud-test", self.app(), host="127.0.0.1", port=0, grace_seconds=0.5)
        await self.host.start()
        return self

    async def stop(self) -> None:
        if self.host is not None:
            await self.host.stop()
