"""SMS and WhatsApp: the provider interface, Twilio's Messages API over httpx (retries on 429
and 5xx with back-off, honouring Retry-After), and the development default that writes each
message as JSON beside the caught mail (<mail dir>/sms/)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Protocol

import httpx

from services.comms.domain.delivery import PermanentFailure, TransientFailure


class SmsProvider(Protocol):
    async def send(self, channel: str, to: str, text: str) -> str: ...

    async def close(self) -> None: ...


class DevSms:
    """Development: nothing leaves the machine; `givance mail list` shows these too."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory) / "sms"

    async def send(self, channel: str, to: str, text: str) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        sid = f"{time.time_ns():x}-{uuid.uuid4().hex[:6]}"
        (self.directory / f"{sid}.json").write_text(json.dumps(
            {"id": sid, "channel": channel, "to": to, "text": text, "received": time.time()}))
        return sid

    async def close(self) -> None:
        return None


class TwilioSms:
    def __init__(self, base_url: str, account_sid: str, auth_token: str, sender: str, *, attempts: int = 4,
                 backoff: float = 0.5, timeout: float = 10.0):
        self.account_sid, self.sender = account_sid, sender
        self.attempts, self.backoff = attempts, backoff
        self.client = httpx.AsyncClient(base_url=base_url, auth=(account_sid, auth_token), timeout=timeout)

    async def send(self, channel: str, to: str, text: str) -> str:
        prefix = "whatsapp:" if channel == "whatsapp" else ""
        data = {"To": f"{prefix}{to}", "From": f"{prefix}{self.sender}", "Body": text}
        path = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        resp = await post_retrying(self.client, "twilio", path, self.attempts, self.backoff, data=data)
        return str(resp.json().get("sid", ""))

    async def close(self) -> None:
        await self.client.aclose()


async def post_retrying(client: httpx.AsyncClient, name: str, path: str, attempts: int, backoff: float,
                        **kwargs) -> httpx.Response:
    """POST, retrying transport errors, 429 and 5xx with back-off (honouring Retry-After):
    TransientFailure when no attempt is left, PermanentFailure on any other 4xx."""
    for attempt in range(1, attempts + 1):
        try:
            resp = await client.post(path, **kwargs)
        except httpx.TransportError as exc:
            if attempt == attempts:
                raise TransientFailure(f"{name} unreachable: {exc}") from None
            await asyncio.sleep(backoff * 2 ** (attempt - 1))
            continue
        if resp.status_code == 429 or resp.status_code >= 500:
            if attempt == attempts:
                raise TransientFailure(f"{name} answered {resp.status_code}")
            retry_after = resp.headers.get("retry-after", "")
            delay = float(retry_after) if retry_after.isdigit() else backoff * 2 ** (attempt - 1)
            await asyncio.sleep(min(delay, 30.0))
            continue
        if resp.status_code >= 400:
            raise PermanentFailure(f"{name} refused ({resp.status_code}): {resp.text[:300]}")
        return resp
    raise TransientFailure(f"{name}: no attempt left")
