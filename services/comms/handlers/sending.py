"""SendMessage and RenderTemplate: a template to a donor (whose address crm gives, with the
caller's token) or to an address."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chassis.errors import FailedPrecondition, InvalidArgument, Violations
from chassis.resource import check_request_id, parse_optional_id
from services.comms.domain import addresses
from services.comms.domain import templates as tpl
from services.comms.handlers import templates as templates_handlers
from services.comms.handlers.deps import Deps
from services.comms.handlers.messages import Compose, queue
from services.comms.store import messages as store
from services.comms.store.messages import MessageRow


@dataclass
class SendRequest:
    request_id: str
    donor_id: str
    to_address: str
    channel: str
    template_name: str
    variables: dict[str, Any]
    category: str
    schedule_at: datetime | None


def check_variables_size(variables: dict[str, Any], v: Violations, field: str = "variables") -> None:
    if len(json.dumps(variables, default=str)) > tpl.VARIABLES_BYTES_MAX:
        v.add(field, f"must be at most {tpl.VARIABLES_BYTES_MAX} bytes")


def _address_of(channel: str, donor: Any) -> str:
    return donor.email if channel == "email" else donor.phone


async def send_message(deps: Deps, org: uuid.UUID, caller: Any, created_by: str, r: SendRequest) -> MessageRow:
    """`caller` forwards the request's token to crm (providers.crm.Caller)."""
    v = Violations()
    check_request_id(r.request_id, v)
    donor_id = parse_optional_id(r.donor_id, "donor_id", v)
    if bool(r.donor_id) == bool(r.to_address):
        v.add("to_address" if r.to_address else "donor_id", "give either donor_id or to_address")
    address = addresses.for_channel(r.channel, r.to_address, "to_address", v) if r.to_address else ""
    tpl.check_name(r.template_name, "template_name", v)
    if r.category:
        tpl.check_category(r.category, "category", v)
    check_variables_size(r.variables, v)
    v.raise_if_any()
    try:
        creator = uuid.UUID(created_by)
    except ValueError:
        creator = None
    if donor_id is None:  # one unit of work: nothing to ask crm
        async with deps.db.unit_of_work(org) as uow:
            earlier = await _earlier(uow, org, r.request_id)
            if earlier is not None:
                return earlier
            template = await _template(uow, org, r, v)
            row = await _queue(uow, deps, org, r, template, address, None, None, creator)
        deps.kick.set()
        return row
    async with deps.db.unit_of_work(org) as uow:  # a retry answers without asking crm again
        earlier = await _earlier(uow, org, r.request_id)
        if earlier is not None:
            return earlier
        template = await _template(uow, org, r, v)
    donor = await deps.crm.donor(caller, str(donor_id))
    raw = _address_of(r.channel, donor)
    if not raw:
        raise FailedPrecondition(f"the donor has no {'email address' if r.channel == 'email' else 'phone'}",
                                 reason="DONOR_HAS_NO_ADDRESS")
    address = addresses.for_channel(r.channel, raw, "donor_id", v)
    v.raise_if_any()
    async with deps.db.unit_of_work(org) as uow:
        row = await _queue(uow, deps, org, r, template, address, donor_id, donor.as_variables(), creator)
    deps.kick.set()
    return row


async def _earlier(uow, org: uuid.UUID, request_id: str) -> MessageRow | None:
    if not request_id:
        return None
    earlier = await store.id_by_request_id(uow.conn, org, request_id)
    return await store.get(uow.conn, org, earlier) if earlier is not None else None


async def _template(uow, org: uuid.UUID, r: SendRequest, v: Violations) -> tpl.TemplateBody:
    template = await templates_handlers.resolve(uow.conn, org, r.template_name)
    if template.channel != r.channel:
        raise InvalidArgument.field("template_name", f"is a {template.channel} template, not {r.channel}")
    templates_handlers.check_variables(template, r.variables, "variables", v)
    v.raise_if_any()
    return template


async def _queue(uow, deps: Deps, org: uuid.UUID, r: SendRequest, template: tpl.TemplateBody, address: str,
                 donor_id: uuid.UUID | None, donor_vars: dict | None, creator: uuid.UUID | None) -> MessageRow:
    category = r.category or template.category
    message_id, _ = await queue(uow, deps, org, Compose(
        channel=r.channel, to_address=address, template=template, variables=r.variables, category=category,
        donor_id=donor_id, donor=donor_vars, bulk=category != tpl.TRANSACTIONAL, request_id=r.request_id or None,
        schedule_at=r.schedule_at, created_by=creator))
    return await store.get(uow.conn, org, message_id)


async def render_preview(deps: Deps, org: uuid.UUID, caller: Any, name: str, variables: dict[str, Any],
                         donor_id: str) -> tpl.Rendered:
    v = Violations()
    tpl.check_name(name, "template_name", v)
    donor = parse_optional_id(donor_id, "donor_id", v)
    check_variables_size(variables, v)
    v.raise_if_any()
    async with deps.db.unit_of_work(org) as uow:
        template = await templates_handlers.resolve(uow.conn, org, name)
    templates_handlers.check_variables(template, variables, "variables", v)
    v.raise_if_any()
    donor_vars = dict(tpl.SAMPLE_DONOR)
    if donor is not None:
        donor_vars = (await deps.crm.donor(caller, str(donor))).as_variables()
    sample = {name: f"[{name}]" for name in template.variables}
    context = {**sample, **variables, "donor": donor_vars, "organization": {"name": "Your organization"},
               "signature": "", "message_id": "", "unsubscribe_url": f"{deps.settings.public_url}/u/preview",
               "preferences_url": f"{deps.settings.public_url}/u/preview"}
    return tpl.render(template, context)
