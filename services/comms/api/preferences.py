"""comms' public preference page and double opt-in confirmation (on comms' public HTTP).

    GET  /p/<token>   the preference page: the organization's categories, the address' consent to each
    POST /p/<token>   saves the ticked categories (a form token from the page, and no foreign Origin)
    GET  /k/<token>   a double opt-in confirmation's page: changes nothing (link scanners follow GETs)
    POST /k/<token>   confirms: the pending grants become consent, recorded with time, source, evidence

Each token is signed and names one message: it speaks only for that message's address.
"""

from __future__ import annotations

import html
import time
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from services.comms.domain import consent, tracking
from services.comms.handlers import preferences as handlers
from services.comms.handlers.deps import Deps

NO_STORE = {"cache-control": "no-store, private", "referrer-policy": "no-referrer", "x-frame-options": "DENY"}
MAX_FORM_BYTES = 8192
STATES = {consent.SUBSCRIBED: "", consent.PENDING: " (waiting for your confirmation: see your inbox)",
          consent.UNSUBSCRIBED: ""}


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"robots\" content=\"noindex\">"
        f"<title>{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>{body}</body></html>",
        status_code=status, headers=NO_STORE)


def _not_found() -> HTMLResponse:
    return page("Link not found", "<p>This link is not valid.</p>", 404)


def _evidence(request: Request) -> str:
    client = request.client.host if request.client else "unknown"
    return f"ip {client}; agent {request.headers.get('user-agent', '')[:300]}"


async def _form(request: Request) -> dict[str, list[str]] | None:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return None
    return parse_qs(body.decode(errors="replace"), max_num_fields=consent.FORM_FIELDS_MAX + 5)


def routes(deps: Deps) -> list[Route]:
    signer, public = deps.signer, deps.settings.public_url
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(public))

    def foreign(request: Request) -> bool:
        given = request.headers.get("origin")
        return given is not None and given != "null" and given != origin

    def preference_form(token: str, prefs: handlers.Preferences, note: str = "") -> HTMLResponse:
        boxes = "".join(
            f"<p><label><input type=\"checkbox\" name=\"category\" value=\"{html.escape(c)}\""
            f"{' checked' if state != consent.UNSUBSCRIBED else ''}> {html.escape(c)}"
            f"{html.escape(STATES[state])}</label></p>" for c, state in prefs.categories)
        held = (f"<p>This address is on our do-not-send list ({html.escape(prefs.suppressed.replace('_', ' '))})."
                "</p>" if prefs.suppressed else "")
        return page("Email preferences", (
            f"{note}<p>What <strong>{html.escape(prefs.address)}</strong> receives from us:</p>{held}"
            f"<form method=\"post\" action=\"{html.escape(f'{public}/p/{token}')}\">{boxes}"
            f"<p>Receipts and account messages are always sent.</p>"
            f"<input type=\"hidden\" name=\"form\" value=\"{html.escape(signer.form_token(token, time.time()))}\">"
            f"<button type=\"submit\">Save</button></form>"))

    async def preferences_page(request: Request) -> Response:
        token = request.path_params["token"]
        claims = signer.verify(token, tracking.PREFERENCES)
        prefs = await handlers.page(deps, claims) if claims else None
        return _not_found() if prefs is None else preference_form(token, prefs)

    async def preferences_save(request: Request) -> Response:
        token = request.path_params["token"]
        claims = signer.verify(token, tracking.PREFERENCES)
        if claims is None:
            return _not_found()
        form = await _form(request)
        if form is None:
            return page("Too large", "<p>The form is too large.</p>", 413)
        if foreign(request) or not signer.form_token_ok((form.get("form") or [""])[0], token, time.time()):
            return page("Please try again", "<p>This form is out of date. Open the link from your email again.</p>",
                        403)
        wanted = {c for c in form.get("category", [])[:consent.FORM_FIELDS_MAX]}
        prefs = await handlers.update(deps, claims, wanted, _evidence(request))
        if prefs is None:
            return _not_found()
        note = ("<p><strong>Saved.</strong> We sent you an email to confirm your new choices.</p>"
                if prefs.confirmation_sent else "<p><strong>Saved.</strong></p>")
        return preference_form(token, prefs, note)

    async def confirm_page(request: Request) -> Response:
        token = request.path_params["token"]
        claims = signer.verify(token, tracking.CONFIRM)
        found = await handlers.confirmation(deps, claims) if claims else None
        if found is None:
            return _not_found()
        address, categories = found
        if not categories:
            return page("Nothing to confirm", f"<p>{html.escape(address)} has nothing waiting for confirmation.</p>")
        return page("Confirm your subscription", (
            f"<p>Receive {html.escape(', '.join(categories))} at <strong>{html.escape(address)}</strong>?</p>"
            f"<form method=\"post\" action=\"{html.escape(f'{public}/k/{token}')}\">"
            f"<input type=\"hidden\" name=\"form\" value=\"{html.escape(signer.form_token(token, time.time()))}\">"
            f"<button type=\"submit\">Confirm</button></form>"))

    async def confirm(request: Request) -> Response:
        token = request.path_params["token"]
        claims = signer.verify(token, tracking.CONFIRM)
        if claims is None:
            return _not_found()
        form = await _form(request)
        if form is None or foreign(request) or not signer.form_token_ok((form.get("form") or [""])[0], token,
                                                                          time.time()):
            return page("Please try again", "<p>Open the link from your email again.</p>", 403)
        done = await handlers.confirm(deps, claims, _evidence(request))
        if done is None:
            return _not_found()
        address, categories = done
        what = html.escape(", ".join(categories)) if categories else "nothing new"
        return page("Confirmed", f"<p>{html.escape(address)} will receive {what}. Thank you.</p>")

    return [
        Route("/p/{token}", preferences_page, methods=["GET"]),
        Route("/p/{token}", preferences_save, methods=["POST"]),
        Route("/k/{token}", confirm_page, methods=["GET"]),
        Route("/k/{token}", confirm, methods=["POST"]),
    ]
