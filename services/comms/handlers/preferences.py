"""The preference page a recipient reaches from any bulk email (its token names the message, so
it speaks only for that message's address), double opt-in confirmations, and staff-recorded
consent (SuppressionService.GrantConsent). Every change is a row of consent history."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from givance.events.v1 import comms_events_pb2

from chassis.db import UnitOfWork
from chassis.errors import Violations
from services.comms.domain import addresses, consent
from services.comms.domain import messages as rules
from services.comms.domain import templates as tpl
from services.comms.domain.tracking import CONFIRM, TokenClaims
from services.comms.handlers import templates as templates_handlers
from services.comms.handlers.deps import Deps
from services.comms.handlers.messages import Compose, queue
from services.comms.store import messages as messages_store
from services.comms.store import settings as settings_store
from services.comms.store import suppressions as store
from services.comms.store import templates as templates_store

SOURCE_MAX = 100


@dataclass
class Preferences:
    address: str
    categories: list[tuple[str, str]]  # (category, subscribed/pending/unsubscribed)
    suppressed: str | None  # the suppression list's reason, when the address is on it
    confirmation_sent: bool = False


async def _current(uow: UnitOfWork, org: uuid.UUID, address: str) -> tuple[dict[str, str], bool, str | None]:
    sending = await settings_store.get(uow.conn, org)
    words = await store.latest_words(uow.conn, org, address)
    names = consent.categories(await templates_store.categories(uow.conn, org))
    current = {c: consent.state(consent.word_for(words, c), sending["double_opt_in"]) for c in names}
    suppression = await store.find(uow.conn, org, address)
    return current, sending["double_opt_in"], suppression["reason"] if suppression else None


async def page(deps: Deps, claims: TokenClaims) -> Preferences | None:
    """What the page shows (None: no such message)."""
    org = claims.organization_id
    async with deps.db.unit_of_work(org) as uow:
        msg = await messages_store.get(uow.conn, org, claims.message_id)
        if msg is None:
            return None
        current, _, suppressed = await _current(uow, org, msg.to_address)
    return Preferences(msg.to_address, sorted(current.items()), suppressed)


async def update(deps: Deps, claims: TokenClaims, wanted: set[str], evidence: str) -> Preferences | None:
    """The page's submission: ticked categories granted (pending under double opt-in, with a
    confirmation mail), unticked ones withdrawn (comms.email.unsubscribed for each)."""
    org = claims.organization_id
    async with deps.db.unit_of_work(org) as uow:
        msg = await messages_store.get(uow.conn, org, claims.message_id)
        if msg is None:
            return None
        current, double_opt_in, suppressed = await _current(uow, org, msg.to_address)
        todo = consent.changes(current, wanted, double_opt_in)
        granted = [c.category for c in todo if c.granted]
        if granted and suppressed == "unsubscribed":  # the person's own choice, undone by the person
            await store.remove_address(uow.conn, org, msg.to_address)
        sent = await _grant(uow, deps, org, msg.to_address, granted, "preference-page", evidence, double_opt_in,
                            msg.donor_id) if granted else False
        for c in todo:
            if c.granted:
                continue
            await store.change_consent(uow.conn, org, msg.to_address, c.category, False, "preference-page", msg.id,
                                       detail=evidence)
            uow.publish(rules.EMAIL_UNSUBSCRIBED, comms_events_pb2.EmailUnsubscribedEvent(
                message_id=str(msg.id), donor_id=str(msg.donor_id or ""), category=c.category,
                source="preference-page", address=msg.to_address), aggregate_type="message", aggregate_id=str(msg.id))
        current, _, suppressed = await _current(uow, org, msg.to_address)
    if sent:
        deps.kick.set()
    return Preferences(msg.to_address, sorted(current.items()), suppressed, sent)


async def _grant(uow: UnitOfWork, deps: Deps, org: uuid.UUID, address: str, categories: list[str], source: str,
                 evidence: str, double_opt_in: bool, donor_id: uuid.UUID | None) -> bool:
    """Grants the categories; under double opt-in they are pending and a confirmation mail goes
    (True). A grant that is already the latest word is not repeated."""
    if not double_opt_in:
        for category in categories:
            await store.change_consent(uow.conn, org, address, category, True, source, None, detail=evidence)
        return False
    confirmation = uuid.uuid4()
    token = deps.signer.sign(TokenClaims(CONFIRM, org, confirmation))
    template = await templates_handlers.resolve(uow.conn, org, "consent-confirmation")
    await queue(uow, deps, org, Compose(
        channel="email", to_address=address, template=template, category=tpl.TRANSACTIONAL, donor_id=donor_id,
        variables={"confirm_url": f"{deps.settings.public_url}/k/{token}", "categories": ", ".join(categories)},
        message_id=confirmation))
    for category in categories:
        await store.change_consent(uow.conn, org, address, category, True, source, confirmation, pending=True,
                                   detail=evidence)
    return True


async def confirmation(deps: Deps, claims: TokenClaims) -> tuple[str, list[str]] | None:
    """The address and the categories a confirmation link still waits for (None: no such message)."""
    org = claims.organization_id
    async with deps.db.unit_of_work(org) as uow:
        msg = await messages_store.get(uow.conn, org, claims.message_id)
        if msg is None:
            return None
        return msg.to_address, [r["category"] for r in await store.pending_for(uow.conn, org, msg.id)]


async def confirm(deps: Deps, claims: TokenClaims, evidence: str) -> tuple[str, list[str]] | None:
    """Double opt-in confirmed: each pending grant of that message becomes a grant, recorded with
    its time, source ("double-opt-in") and evidence (the request that confirmed it)."""
    org = claims.organization_id
    async with deps.db.unit_of_work(org) as uow:
        msg = await messages_store.get(uow.conn, org, claims.message_id)
        if msg is None:
            return None
        pending = await store.pending_for(uow.conn, org, msg.id)
        for r in pending:
            await store.change_consent(uow.conn, org, r["address"], r["category"], True, "double-opt-in", msg.id,
                                       detail=evidence)
    return msg.to_address, [r["category"] for r in pending]


async def grant_consent(deps: Deps, org: uuid.UUID, address: str, categories: list[str], source: str,
                        evidence: str) -> bool:
    """Staff record a person's wish to receive categories (a sign-up form, an event): granted,
    or pending with a confirmation mail under double opt-in (True)."""
    v = Violations()
    clean = addresses.email(address, "address", v)
    if not categories:
        v.add("categories", "name at least one category")
    for i, c in enumerate(categories[:consent.FORM_FIELDS_MAX]):
        tpl.check_category(c, f"categories[{i}]", v)
        if c in consent.TRANSACTIONAL_CATEGORIES:
            v.add(f"categories[{i}]", f"{c} is transactional: it needs no consent")
    if len(categories) > consent.FORM_FIELDS_MAX:
        v.add("categories", f"at most {consent.FORM_FIELDS_MAX}")
    v.check_text("source", source, SOURCE_MAX)
    v.raise_if_any()
    async with deps.db.unit_of_work(org) as uow:
        sending = await settings_store.get(uow.conn, org)
        sent = await _grant(uow, deps, org, clean, sorted(set(categories)), source or "api", evidence,
                            sending["double_opt_in"], None)
    if sent:
        deps.kick.set()
    return sent
