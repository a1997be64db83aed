"""Opens, clicks and unsubscribes arriving over the public HTTP endpoints (signed tokens)."""

from __future__ import annotations

from datetime import UTC, datetime

from givance.events.v1 import comms_events_pb2

from chassis.convert import timestamp
from services.comms.domain import messages as rules
from services.comms.domain import tracking
from services.comms.domain.tracking import TokenClaims
from services.comms.handlers.deps import Deps
from services.comms.store import messages as store
from services.comms.store import suppressions as suppressions_store
from services.comms.store.messages import MessageRow


async def record_open(deps: Deps, claims: TokenClaims, user_agent: str) -> None:
    org = claims.organization_id
    now = datetime.now(UTC)
    async with deps.db.unit_of_work(org) as uow:
        found = await store.open_target(uow.conn, org, claims.message_id)
        if found is None:
            return
        sent_at, donor_id = found
        machine = tracking.is_machine(user_agent, sent_at, now, deps.settings.machine_open_seconds)
        await store.add_event(uow.conn, org, claims.message_id, "opened", machine=machine, user_agent=user_agent)
        uow.publish(rules.EMAIL_OPENED, comms_events_pb2.EmailOpenedEvent(
            message_id=str(claims.message_id), donor_id=str(donor_id or ""), machine=machine,
            open_time=timestamp(now)), aggregate_type="message", aggregate_id=str(claims.message_id))


async def message_for(deps: Deps, claims: TokenClaims) -> MessageRow | None:
    async with deps.db.unit_of_work(claims.organization_id) as uow:
        return await store.get(uow.conn, claims.organization_id, claims.message_id)


async def unsubscribe(deps: Deps, claims: TokenClaims, *, everything: bool, source: str) -> MessageRow | None:
    """Withdraws the address' consent to the message's category (or, `everything`, suppresses
    the address), keeps the change in the consent history and says so: `comms.email.unsubscribed`."""
    org = claims.organization_id
    async with deps.db.unit_of_work(org) as uow:
        msg = await store.get(uow.conn, org, claims.message_id)
        if msg is None:
            return None
        category = "*" if everything else msg.category
        await suppressions_store.change_consent(uow.conn, org, msg.to_address, category, False, source, msg.id)
        if everything:
            await suppressions_store.add(uow.conn, org, msg.to_address, "unsubscribed", f"via {source}")
        await store.add_event(uow.conn, org, msg.id, "unsubscribed", detail=f"{category} via {source}")
        uow.publish(rules.EMAIL_UNSUBSCRIBED, comms_events_pb2.EmailUnsubscribedEvent(
            message_id=str(msg.id), donor_id=str(msg.donor_id or ""), category="" if everything else category,
            source=source, address=msg.to_address), aggregate_type="message", aggregate_id=str(msg.id))
    return msg


async def unsubscribe_by_mail(deps: Deps, token: str) -> bool:
    """Mail to the List-Unsubscribe mailto (`unsubscribe+<token>@...`): the message's category, as
    the one-click POST. False for a token that is not genuine."""
    claims = deps.signer.verify_address(token, tracking.UNSUBSCRIBE)
    return claims is not None and await unsubscribe(deps, claims, everything=False, source="mailto") is not None
