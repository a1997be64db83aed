"""comms' public HTTP (on the chassis HttpHost, 127.0.0.1:8081): the open pixel, the click
redirect, the unsubscribe page and its RFC 8058 one-click POST. Request in, handler call,
response out; every token is verified before anything is read.

    GET  /o/<token>.gif   the open pixel (always the pixel, whatever the token)
    GET  /c/<token>       302 to the link's stored destination; 404 for a bad token
    GET  /u/<token>       a confirmation page: changes nothing (link scanners follow GETs)
    POST /u/<token>       unsubscribes: one-click (List-Unsubscribe=One-Click) or the page's form
    /p/<token>, /k/<token>  the preference page and double opt-in confirmations (api/preferences.py)
    POST /webhooks/mailgun  Mailgun's event webhook (HMAC-signed): delivered, failed, complained, unsubscribed
    POST /webhooks/sendgrid SendGrid's signed event webhook (ECDSA): delivered, bounce, spamreport, unsubscribe
    GET  /webhooks/whatsapp Meta's verification handshake (hub.verify_token -> hub.challenge)
    POST /webhooks/whatsapp WhatsApp Cloud API messages (X-Hub-Signature-256)
"""

from __future__ import annotations

import base64
import hmac
import html
import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from services.comms.api import preferences
from services.comms.domain import tracking, webhooks
from services.comms.handlers import tracking as handlers
from services.comms.handlers import webhooks as webhook_handlers
from services.comms.handlers import whatsapp as whatsapp_handlers
from services.comms.handlers.clicks import ClickRecorder
from services.comms.handlers.deps import Deps
from services.comms.handlers.messages import preferences_url

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_STORE = {"cache-control": "no-store, private", "referrer-policy": "no-referrer"}
MAX_FORM_BYTES = 4096


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"robots\" content=\"noindex\">"
        f"<title>{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>{body}</body></html>",
        status_code=status, headers=NO_STORE)


def build_app(deps: Deps) -> Starlette:
    signer = deps.signer
    clicks = ClickRecorder(deps)

    def choose(claims: tracking.TokenClaims, words: str) -> str:
        """A link to the preference page of the same message (so the same address), signed anew."""
        url = preferences_url(deps, claims.organization_id, claims.message_id)
        return f"<p><a href=\"{html.escape(url)}\">{html.escape(words)}</a></p>"

    async def open_pixel(request: Request) -> Response:
        token = request.path_params["token"]
        claims = signer.verify(token.removesuffix(".gif"), tracking.OPEN)
        if claims is not None:
            await handlers.record_open(deps, claims, request.headers.get("user-agent", ""))
        return Response(PIXEL, media_type="image/gif", headers=NO_STORE)

    async def click(request: Request) -> Response:
        claims = signer.verify(request.path_params["token"], tracking.CLICK)
        url = await clicks.click(claims, request.headers.get("user-agent", "")) if claims else None
        if url is None:
            return _page("Link not found", "<p>This link is not valid.</p>", 404)
        return RedirectResponse(url, status_code=302, headers=NO_STORE)

    async def unsubscribe_page(request: Request) -> Response:
        token = request.path_params["token"]
        claims = signer.verify(token, tracking.UNSUBSCRIBE)
        msg = await handlers.message_for(deps, claims) if claims else None
        if msg is None:
            return _page("Link not found", "<p>This unsubscribe link is not valid.</p>", 404)
        action = html.escape(f"{deps.settings.public_url}/u/{token}")
        category = html.escape(msg.category)
        return _page("Unsubscribe", (
            f"<p>Stop emails to <strong>{html.escape(msg.to_address)}</strong>?</p>"
            f"<form method=\"post\" action=\"{action}\">"
            f"<button name=\"scope\" value=\"category\">Unsubscribe from {category}</button> "
            f"<button name=\"scope\" value=\"all\">Unsubscribe from everything</button></form>"
            + choose(claims, "Or choose which emails you receive")))

    async def unsubscribe(request: Request) -> Response:
        claims = signer.verify(request.path_params["token"], tracking.UNSUBSCRIBE)
        body = (await request.body())[:MAX_FORM_BYTES]
        if claims is None:
            return _page("Link not found", "<p>This unsubscribe link is not valid.</p>", 404)
        from urllib.parse import parse_qs

        form = {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}
        one_click = form.get("List-Unsubscribe") == "One-Click"
        everything = form.get("scope") == "all"
        msg = await handlers.unsubscribe(deps, claims, everything=everything,
                                         source="one-click" if one_click else "preference-page")
        if msg is None:
            return _page("Link not found", "<p>This unsubscribe link is not valid.</p>", 404)
        what = "all emails" if everything else html.escape(msg.category)
        return _page("Unsubscribed", f"<p>{html.escape(msg.to_address)} will get no more {what} from us.</p>"
                     + choose(claims, "Choose which emails you receive"))

    async def mailgun(request: Request) -> Response:
        body = await request.body()
        if len(body) > webhooks.MAX_BODY_BYTES:
            return Response("too large", status_code=413)
        try:
            payload = json.loads(body)
        except ValueError:
            return Response("not JSON", status_code=400)
        if not isinstance(payload, dict) or not webhooks.mailgun_signature_ok(
                deps.settings.mailgun_signing_key, payload.get("signature")):
            return Response("bad signature", status_code=406)  # Mailgun stops retrying on 406
        event = webhooks.mailgun_event(payload)
        if event is None:
            return Response("not an event", status_code=400)
        outcome = await webhook_handlers.receive(deps.db, "mailgun", event, payload)
        return Response(outcome, status_code=503 if outcome == "failed" else 200)  # a retry applies it

    sendgrid_key = webhooks.sendgrid_key(deps.settings.sendgrid_verification_key)

    async def sendgrid(request: Request) -> Response:
        body = await request.body()
        if len(body) > webhooks.MAX_BODY_BYTES:
            return Response("too large", status_code=413)
        if not webhooks.sendgrid_signature_ok(sendgrid_key, body, request.headers.get(webhooks.SENDGRID_SIGNATURE, ""),
                                              request.headers.get(webhooks.SENDGRID_TIMESTAMP, "")):
            return Response("bad signature", status_code=403)
        try:
            items = json.loads(body)
        except ValueError:
            return Response("not JSON", status_code=400)
        if not isinstance(items, list) or len(items) > webhooks.SENDGRID_MAX_EVENTS:
            return Response("not an event array", status_code=400)
        outcomes = []
        for item in items:
            event = webhooks.sendgrid_event(item)
            outcomes.append("not-an-event" if event is None
                            else await webhook_handlers.receive(deps.db, "sendgrid", event, item))
        # one failed event: the whole batch again (SendGrid retries); the applied ones are duplicates then
        return Response(",".join(outcomes), status_code=503 if "failed" in outcomes else 200)

    async def whatsapp_verify(request: Request) -> Response:
        q = request.query_params
        token = deps.settings.whatsapp_verify_token
        if q.get("hub.mode") == "subscribe" and token and hmac.compare_digest(q.get("hub.verify_token", ""), token):
            return PlainTextResponse(q.get("hub.challenge", "")[:200])
        return Response("forbidden", status_code=403)

    async def whatsapp(request: Request) -> Response:
        body = await request.body()
        if len(body) > webhooks.MAX_BODY_BYTES:
            return Response("too large", status_code=413)
        if not webhooks.meta_signature_ok(deps.settings.whatsapp_app_secret, body,
                                          request.headers.get("x-hub-signature-256", "")):
            return Response("bad signature", status_code=401)
        try:
            payload = json.loads(body)
        except ValueError:
            return Response("not JSON", status_code=400)
        outcomes = [await whatsapp_handlers.receive(deps, m, payload) for m in webhooks.whatsapp_messages(payload)]
        return Response(",".join(outcomes) or "nothing", status_code=200)

    routes = [
        Route("/o/{token}", open_pixel, methods=["GET"]),
        Route("/c/{token}", click, methods=["GET"]),
        Route("/u/{token}", unsubscribe_page, methods=["GET"]),
        Route("/u/{token}", unsubscribe, methods=["POST"]),
        *preferences.routes(deps),
        Route("/webhooks/mailgun", mailgun, methods=["POST"]),
        Route("/webhooks/sendgrid", sendgrid, methods=["POST"]),
        Route("/webhooks/whatsapp", whatsapp_verify, methods=["GET"]),
        Route("/webhooks/whatsapp", whatsapp, methods=["POST"]),
    ]
    return Starlette(routes=routes)
