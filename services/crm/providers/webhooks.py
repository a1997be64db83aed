"""Calling a workflow's webhook: POST a JSON body signed with HMAC-SHA256.

Headers: `X-Givance-Signature: sha256=<hex of HMAC(secret, timestamp + "." + body)>`,
`X-Givance-Timestamp` (unix seconds) and `Idempotency-Key` (execution and step: a step run again
after a crash sends the same key, so the receiver can do its work once).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Protocol

import httpx

TIMEOUT_SECONDS = 10.0


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Response:
    status: int


class Webhooks(Protocol):
    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Response: ...


class HttpWebhooks:
    """The real caller (httpx); no redirects followed, a bounded timeout."""

    def __init__(self, timeout: float = TIMEOUT_SECONDS):
        self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Response:
        r = await self._client.post(url, content=body, headers={"content-type": "application/json", **headers})
        return Response(r.status_code)

    async def close(self) -> None:
        await self._client.aclose()
