"""A session's generated emails: list, edit, approve or reject, approve in bulk, send.

Sending hands each approved email to comms' send queue as a message of the `ai-email` template
(the organization's own of that name when it has one): tracked (open pixel, click redirects),
with List-Unsubscribe and the unsubscribe link, sent once per generated email (its source key).
The donor's address is read from crm at sending time with the sender's own token. The generated
email then follows its message: SCHEDULED, then SENT, or FAILED with the reason.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from markupsafe import Markup

from chassis.errors import FailedPrecondition, NotFound, Violations
from chassis.resource import Keyset, check_etag, expand_mask, found, parse_id
from services.comms.domain import addresses
from services.comms.domain import generation as rules
from services.comms.handlers import templates as templates_handlers
from services.comms.handlers.deps import Deps
from services.comms.handlers.messages import Compose, queue
from services.comms.store import generation as store
from services.comms.store import messages as messages_store
from services.comms.store.generation import GeneratedEmail

UPDATABLE = ["subject", "body_plain"]
ADDRESS_READS_AT_ONCE = 16


async def _session(uow, org: uuid.UUID, session_id: str, field: str = "session_id") -> uuid.UUID:
    sid = parse_id(session_id, field)
    found(await store.get_session(uow.conn, org, sid), "email generation session", session_id)
    return sid


async def list_emails(deps: Deps, org: uuid.UUID, session_id: str, status: str | None, page_size: int,
                      page_token: str) -> tuple[list[GeneratedEmail], str]:
    sid = parse_id(session_id, "session_id")
    page = Keyset.of(page_size, page_token, ("generated", str(sid), status), (datetime.fromisoformat, uuid.UUID),
                     maximum=500)
    async with deps.db.unit_of_work(org) as uow:
        await _session(uow, org, session_id)
        rows = await store.page_emails(uow.conn, org, sid, status, page.after, page.limit)
    return page.cut(rows, lambda r: (r.created_at, r.id))


async def _change(deps: Deps, org: uuid.UUID, email_id: str, given_etag: str, etag_field: str, allowed: tuple,
                  action: str, **changes) -> GeneratedEmail:
    eid = parse_id(email_id, "email.id" if etag_field.startswith("email.") else "id")
    async with deps.db.unit_of_work(org) as uow:
        row = found(await store.get_email(uow.conn, org, eid, for_update=True), "generated email", email_id)
        check_etag(given_etag, row.version, "generated email", etag_field)
        if row.status not in allowed:
            raise FailedPrecondition(rules.why_not(action, row.status), reason="GENERATED_EMAIL_STATUS")
        await store.update_email(uow.conn, org, eid, **changes)
        uow.audit(f"comms.generated_email.{action}", "generated_email", str(eid),
                  before={"status": row.status}, after={"status": changes.get("status", row.status)})
        return await store.get_email(uow.conn, org, eid)


async def update(deps: Deps, org: uuid.UUID, email_id: str, given_etag: str, mask: list[str], subject: str,
                 body: str) -> GeneratedEmail:
    v = Violations()
    attrs = expand_mask(mask, UPDATABLE, "update_mask", v)
    changes: dict = {"status": "draft", "status_reason": "", "approved_by": None, "approved_at": None}
    if "subject" in attrs and v.check_text("email.subject", subject.strip(), rules.SUBJECT_MAX, required=True):
        changes["subject"] = subject.strip()
    if "body_plain" in attrs and v.check_text("email.body_plain", body, rules.BODY_MAX, required=True):
        changes["body_plain"], changes["body_html"] = body, rules.html_of(body)
    v.raise_if_any()
    return await _change(deps, org, email_id, given_etag, "email.etag", rules.EDITABLE, "edited", **changes)


async def approve(deps: Deps, org: uuid.UUID, principal: uuid.UUID | None, email_id: str,
                  given_etag: str) -> GeneratedEmail:
    return await _change(deps, org, email_id, given_etag, "etag", rules.APPROVABLE, "approved", status="approved",
                         status_reason="", approved_by=principal, approved_at=datetime.now(UTC))


async def reject(deps: Deps, org: uuid.UUID, email_id: str, reason: str, given_etag: str) -> GeneratedEmail:
    v = Violations()
    parse_id(email_id, "id", v)
    v.check_text("reason", reason, rules.REASON_MAX)
    v.raise_if_any()
    return await _change(deps, org, email_id, given_etag, "etag", rules.REJECTABLE, "rejected", status="rejected",
                         status_reason=reason.strip(), approved_by=None, approved_at=None)


def _batch(ids: list[str], v: Violations) -> list[uuid.UUID] | None:
    if not ids:
        return None
    if len(ids) > rules.BATCH_MAX:
        v.add("ids", f"at most {rules.BATCH_MAX}")
        return None
    return list(dict.fromkeys(i for n, raw in enumerate(ids) if (i := parse_id(raw, f"ids[{n}]", v)) is not None))


async def _all_exist(uow, org: uuid.UUID, sid: uuid.UUID, ids: list[uuid.UUID] | None) -> None:
    if ids is not None:
        missing = set(ids) - await store.existing_ids(uow.conn, org, sid, ids)
        if missing:
            raise NotFound(f"generated email {sorted(map(str, missing))[0]} not found in the session")


async def batch_approve(deps: Deps, org: uuid.UUID, principal: uuid.UUID | None, session_id: str,
                        ids: list[str]) -> int:
    v = Violations()
    parse_id(session_id, "session_id", v)
    wanted = _batch(ids, v)
    v.raise_if_any()
    async with deps.db.unit_of_work(org) as uow:
        sid = await _session(uow, org, session_id)
        await _all_exist(uow, org, sid, wanted)
        count = await store.approve_drafts(uow.conn, org, sid, wanted, principal)
        uow.audit("comms.generated_email.batch_approved", "email_generation_session", str(sid),
                  after={"approved": count})
    return count


async def send_approved(deps: Deps, org: uuid.UUID, caller, principal: uuid.UUID | None, session_id: str,
                        ids: list[str], send_at: datetime | None) -> tuple[int, int]:
    """(scheduled, failed): `caller` reads each donor's address from crm with the sender's rights."""
    v = Violations()
    parse_id(session_id, "session_id", v)
    wanted = _batch(ids, v)
    v.raise_if_any()
    async with deps.db.unit_of_work(org) as uow:
        sid = await _session(uow, org, session_id)
        await _all_exist(uow, org, sid, wanted)
        approved = await store.emails_in(uow.conn, org, sid, wanted, ("approved",))
    addresses_of = await _addresses(deps, caller, {e.donor_id for e in approved})
    scheduled = failed = 0
    async with deps.db.unit_of_work(org) as uow:
        template = await templates_handlers.resolve(uow.conn, org, rules.SEND_TEMPLATE)
        for e in await store.emails_in(uow.conn, org, sid, [e.id for e in approved], ("approved",)):
            address, donor = addresses_of.get(e.donor_id, ("", None))
            if not address:
                failed += 1
                await store.update_email(uow.conn, org, e.id, status="failed",
                                         status_reason="the donor has no usable email address")
                continue
            # body_html is html_of(body_plain): escaped when it was made, so it is inserted as is
            html_part = Markup(e.body_html)  # noqa: S704
            message_id, _ = await queue(uow, deps, org, Compose(
                channel="email", to_address=address, template=template, category=template.category,
                variables={"subject": e.subject, "body": e.body_plain, "body_html": html_part},
                donor_id=e.donor_id, donor=donor, bulk=True, source_key=rules.SOURCE_KEY.format(e.id),
                schedule_at=send_at, created_by=principal))
            message = await messages_store.get(uow.conn, org, message_id)
            if message.status == "suppressed":
                failed += 1
                await store.update_email(uow.conn, org, e.id, status="failed", status_reason=message.status_reason,
                                         message_id=message_id)
                continue
            scheduled += 1
            await store.update_email(uow.conn, org, e.id, status="scheduled", message_id=message_id,
                                     scheduled_for=send_at or datetime.now(UTC), sent_by_staff_id=principal,
                                     provider="smtp", provider_message_id=message.rfc822_message_id)
        uow.audit("comms.generated_email.sent", "email_generation_session", str(sid),
                  after={"scheduled": scheduled, "failed": failed})
    deps.kick.set()
    return scheduled, failed


async def _addresses(deps: Deps, caller, donors: set[uuid.UUID]) -> dict[uuid.UUID, tuple[str, dict | None]]:
    """Each donor's normalized email address ("" when none or not usable) and template fields."""
    slots = asyncio.Semaphore(ADDRESS_READS_AT_ONCE)
    out: dict[uuid.UUID, tuple[str, dict | None]] = {}

    async def one(d: uuid.UUID) -> None:
        async with slots:
            try:
                contact = await deps.crm.donor(caller, str(d))
            except NotFound:
                out[d] = ("", None)
                return
        v = Violations()
        address = addresses.for_channel("email", contact.email, "email", v) if contact.email else ""
        out[d] = ("" if v else address, contact.as_variables())

    await asyncio.gather(*(one(d) for d in donors))
    return out
