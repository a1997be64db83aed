"""UpdateAccount: a user's own profile (names, username, avatar, country), with a field mask and
an etag. The username is unique whatever its case (a unique index on lower(username)); the
change is recorded in the caller's organization's audit trail."""

from __future__ import annotations

import uuid

from chassis.context import Principal
from chassis.db import Database
from chassis.errors import NotFound, Violations
from chassis.resource import check_etag, expand_mask
from services.identity.domain import profile as rules
from services.identity.handlers.caller import require_user
from services.identity.store import users
from services.identity.store.users import Account


async def update_account(db: Database, principal: Principal, tenant_id: uuid.UUID, *, raw: dict[str, str],
                         etag: str, mask: list[str]) -> Account:
    me = require_user(principal, "only a user has an account")
    v = Violations()
    fields = expand_mask(mask, rules.ACCOUNT_FIELDS, "update_mask", v)
    clean = rules.check_account(raw, fields, "account", v)
    v.raise_if_any()
    async with db.unit_of_work(tenant_id) as uow:
        account = await users.get_account(uow.conn, me, for_update=True)
        if account is None:
            raise NotFound("account not found")
        check_etag(etag, account.version, "account", "account.etag")
        stored = {f: getattr(account, f) or "" for f in fields}
        changed = {f: clean[f] for f in fields if clean[f] != stored[f]}
        if not changed:
            return account
        await users.update_profile(uow.conn, me, {f: (value or None) if f == "username" else value
                                                  for f, value in changed.items()})
        uow.audit("identity.user.update", "user", str(me), before={f: stored[f] for f in changed}, after=changed)
        account = await users.get_account(uow.conn, me)
    assert account is not None
    return account
