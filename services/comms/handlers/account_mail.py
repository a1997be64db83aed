"""identity's account mail (verification, reset, invitation, phone code), queued by its consumer."""

from __future__ import annotations

import logging
from typing import Any

from chassis.db import UnitOfWork
from chassis.errors import Violations
from services.comms.domain import addresses
from services.comms.handlers import templates as templates_handlers
from services.comms.handlers.deps import Deps
from services.comms.handlers.messages import Compose, queue

log = logging.getLogger(__name__)


async def queue_account_mail(uow: UnitOfWork, deps: Deps, template_name: str, to: str, variables: dict[str, Any],
                             event_id: str, *, channel: str = "email") -> None:
    org = uow.tenant_id
    v = Violations()
    address = addresses.for_channel(channel, to, "to", v)
    if v:
        log.warning("comms: %s for an unusable address skipped (event %s)", template_name, event_id)
        return
    template = await templates_handlers.resolve(uow.conn, org, template_name)
    await queue(uow, deps, org, Compose(channel=channel, to_address=address, template=template, variables=variables,
                                        category="transactional", sensitive=True,
                                        source_key=f"event:{event_id}"))
    deps.kick.set()
