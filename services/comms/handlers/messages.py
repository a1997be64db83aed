"""Messages: compose (render, check suppression and consent, track links) and queue; read them.

Everything comms sends goes through `queue`: SendMessage, identity's account mail, thank-yous
and receipts. It runs inside the caller's unit of work, so the message row, its links and its
send job commit together with whatever asked for them (an inbox row, a request id).
"""

from __future__ import annotations

import html
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chassis.db import Database, UnitOfWork
from chassis.resource import Keyset, found, parse_id
from services.comms.domain import consent, tracking
from services.comms.domain import messages as rules
from services.comms.domain import templates as tpl
from services.comms.domain.delivery import domain_of
from services.comms.handlers.deps import Deps
from services.comms.store import messages as store
from services.comms.store import settings as settings_store
from services.comms.store import suppressions as suppressions_store
from services.comms.store.messages import MessageRow


@dataclass
class Compose:
    channel: str  # email, sms, whatsapp
    to_address: str  # normalized
    template: tpl.TemplateBody
    variables: dict[str, Any]
    category: str
    donor_id: uuid.UUID | None = None
    donor: dict[str, Any] | None = None
    bulk: bool = False  # List-Unsubscribe headers, open and click tracking
    sensitive: bool = False  # identity's links and codes: sealed at rest, never tracked or suppressed
    source_key: str | None = None  # sent once per key ("thank-you:<donation id>")
    request_id: str | None = None
    schedule_at: datetime | None = None
    created_by: uuid.UUID | None = None
    attachment: tuple[str, bytes] | None = None
    message_id: uuid.UUID | None = None  # chosen by the caller when its content names it (a confirmation link)
    extra: dict[str, Any] = field(default_factory=dict)


def body_aad(message_id: uuid.UUID) -> bytes:
    return f"comms.messages.body:{message_id}".encode()


def unsubscribe_url(deps: Deps, org: uuid.UUID, message_id: uuid.UUID) -> str:
    token = deps.signer.sign(tracking.TokenClaims(tracking.UNSUBSCRIBE, org, message_id))
    return f"{deps.settings.public_url}/u/{token}"


def preferences_url(deps: Deps, org: uuid.UUID, message_id: uuid.UUID) -> str:
    token = deps.signer.sign(tracking.TokenClaims(tracking.PREFERENCES, org, message_id))
    return f"{deps.settings.public_url}/p/{token}"


async def queue(uow: UnitOfWork, deps: Deps, org: uuid.UUID, c: Compose) -> tuple[uuid.UUID, bool]:
    """The message's id, and whether this call made it (False: the request id or source key
    had made it already)."""
    conn = uow.conn
    if c.request_id:
        earlier = await store.id_by_request_id(conn, org, c.request_id)
        if earlier is not None:
            return earlier, False
    if c.source_key:
        earlier = await store.id_by_source_key(conn, org, c.source_key)
        if earlier is not None:
            return earlier, False
    sending = await settings_store.get(conn, org)
    message_id = c.message_id or uuid.uuid4()
    sender = sending["from_address"] or deps.settings.default_from
    rfc822_id = rules.rfc822_message_id(org, message_id, domain_of(sender))
    status, reason = "queued", ""
    if not c.sensitive:
        suppressed, word = await suppressions_store.standing(conn, org, c.to_address, c.category)
        if suppressed is not None:
            status, reason = "suppressed", f"the address is suppressed ({suppressed})"
        elif rules.needs_consent(c.category):
            now = consent.state(word, sending["double_opt_in"])
            if word is not None and not word.granted:
                status, reason = "suppressed", f"the address withdrew consent to {c.category}"
            elif now != consent.SUBSCRIBED:
                status, reason = "suppressed", f"the address has not confirmed consent to {c.category} (double opt-in)"
    context: dict[str, Any] = {
        **c.variables,
        "donor": c.donor or {**tpl.NO_DONOR, "email": c.to_address if c.channel == "email" else ""},
        "organization": {"name": sending["from_name"] or "Givance"},
        "signature": sending["signature"],
        "message_id": str(message_id),
        "unsubscribe_url": "" if c.sensitive else unsubscribe_url(deps, org, message_id),
    }
    context["preferences_url"] = "" if c.sensitive else preferences_url(deps, org, message_id)
    rendered = tpl.render(c.template, context)
    text, html_body = rendered.body_text, rendered.body_html
    if c.channel == "email" and sending["signature"] and "signature" not in c.template.body_text:
        text = f"{text.rstrip()}\n\n-- \n{sending['signature']}\n"
    if c.channel == "email" and c.bulk and not c.sensitive:  # every bulk email's footer: preferences, unsubscribe
        if "preferences_url" not in c.template.body_text:
            text = text.rstrip("\n") + consent.text_footer(context["preferences_url"], context["unsubscribe_url"])
        if html_body and "preferences_url" not in c.template.body_html:
            html_body = tracking.add_footer(html_body, consent.html_footer(
                context["preferences_url"], context["unsubscribe_url"], html.escape))
    links: dict[uuid.UUID, str] = {}
    if c.channel == "email" and c.bulk and not c.sensitive and html_body:
        public = deps.settings.public_url

        def track(url: str) -> str | None:
            if url.startswith((public + "/u/", public + "/p/")):
                return None
            link_id = uuid.uuid4()
            links[link_id] = url
            token = deps.signer.sign(tracking.TokenClaims(tracking.CLICK, org, message_id, link_id))
            return f"{public}/c/{token}"

        html_body = tracking.rewrite_links(html_body, track)
        pixel = deps.signer.sign(tracking.TokenClaims(tracking.OPEN, org, message_id))
        html_body = tracking.add_pixel(html_body, f"{public}/o/{pixel}.gif")
    if c.sensitive:
        text = deps.keyring.seal(text.encode(), body_aad(message_id))
        html_body = deps.keyring.seal(html_body.encode(), body_aad(message_id)) if html_body else ""
    values = {
        "id": message_id, "organization_id": org, "channel": c.channel, "donor_id": c.donor_id,
        "to_address": c.to_address, "template_name": c.template.name, "template_version": rendered.version,
        "category": c.category, "bulk": c.bulk, "subject": rendered.subject, "body_text": text,
        "body_html": html_body, "sealed": c.sensitive, "status": status, "status_reason": reason,
        "rfc822_message_id": rfc822_id, "create_request_id": c.request_id, "source_key": c.source_key,
        "scheduled_at": c.schedule_at or datetime.now().astimezone(), "created_by": c.created_by,
        "attachment_name": c.attachment[0] if c.attachment else None,
        "attachment": c.attachment[1] if c.attachment else None,
    }
    if not await store.insert(conn, values):  # a concurrent twin won the request id or source key
        earlier = (await store.id_by_request_id(conn, org, c.request_id) if c.request_id
                   else await store.id_by_source_key(conn, org, c.source_key or ""))
        return earlier, False
    await store.add_links(conn, org, message_id, links)
    if status == "queued":
        await store.enqueue(conn, org, message_id, c.schedule_at)
    else:
        await store.add_event(conn, org, message_id, "suppressed", detail=reason)
    return message_id, True


async def get_message(db: Database, org: uuid.UUID, message_id: str) -> MessageRow:
    mid = parse_id(message_id, "id")
    async with db.unit_of_work(org) as uow:
        row = await store.get(uow.conn, org, mid)
    return found(row, "message", message_id)


async def list_messages(db: Database, org: uuid.UUID, *, donor_id: str, status: str | None, page_size: int,
                        page_token: str) -> tuple[list[MessageRow], str]:
    from chassis.resource import parse_optional_id

    donor = parse_optional_id(donor_id, "donor_id")
    page = Keyset.of(page_size, page_token, ("messages", donor, status), (datetime.fromisoformat, uuid.UUID),
                     maximum=500)
    async with db.unit_of_work(org) as uow:
        rows = await store.page(uow.conn, org, donor_id=donor, status=status, after=page.after, limit=page.limit)
    return page.cut(rows, lambda r: (r.created_at, r.id))
