"""WhatsApp replies: the provider interface, Meta's WhatsApp Cloud API (Graph API
`POST /<phone-number-id>/messages`, a text message, bearer token; retries on 429 and 5xx) over
httpx, and the development default that writes each message as JSON beside the caught mail
(<mail dir>/sms/, channel "whatsapp"), as the SMS default does."""

from __future__ import annotations

from typing import Protocol

import httpx

from services.comms.providers.sms import DevSms, post_retrying


class WhatsAppProvider(Protocol):
    async def send_text(self, to: str, text: str, reply_to: str = "") -> str: ...

    async def close(self) -> None: ...


class DevWhatsApp:
    """Development: nothing leaves the machine (`givance mail list` shows these too)."""

    def __init__(self, directory: str):
        self.files = DevSms(directory)

    async def send_text(self, to: str, text: str, reply_to: str = "") -> str:
        return await self.files.send("whatsapp", to, text)

    async def close(self) -> None:
        return None


class WhatsAppCloud:
    """Meta's WhatsApp Cloud API: `base_url` is the Graph API's versioned root
    (https://graph.facebook.com/v21.0), `phone_number_id` the business number's id."""

    def __init__(self, base_url: str, phone_number_id: str, access_token: str, *, attempts: int = 4,
                 backoff: float = 0.5, timeout: float = 10.0):
        if not phone_number_id or not access_token:
            raise ValueError("the WhatsApp Cloud API needs a phone number id and an access token")
        self.path = f"/{phone_number_id}/messages"
        self.attempts, self.backoff = attempts, backoff
        self.client = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout,
                                        headers={"authorization": f"Bearer {access_token}"})

    async def send_text(self, to: str, text: str, reply_to: str = "") -> str:
        """The sent message's wamid. `to` is E.164 (the API takes the digits)."""
        body: dict = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to.lstrip("+"),
                      "type": "text", "text": {"preview_url": False, "body": text}}
        if reply_to:
            body["context"] = {"message_id": reply_to}
        resp = await post_retrying(self.client, "whatsapp", self.path, self.attempts, self.backoff, json=body)
        messages = resp.json().get("messages") or [{}]
        return str(messages[0].get("id", ""))

    async def close(self) -> None:
        await self.client.aclose()
