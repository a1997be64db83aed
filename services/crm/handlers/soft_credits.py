"""Soft credits: a gift's credits on record, replacing them later (SetDonationSoftCredits), and
keeping the soft totals exact through every write of a gift (corrections, refunds, merges).

Locks: a write of a gift locks its donor, its soft-credited donors (and any donor it is about
to credit) FOR NO KEY UPDATE in id order, then the gift FOR UPDATE, the order RecordDonation
and MergeDonors take too, so totals recomputed under them see every committed credit."""

from __future__ import annotations

import uuid
from decimal import Decimal

from givance.events.v1 import crm_events_pb2

from chassis.convert import money
from chassis.db import Database, UnitOfWork
from chassis.errors import Aborted, NotFound, Violations
from chassis.resource import check_etag, parse_id
from services.crm.domain import soft_credits as rules
from services.crm.domain.soft_credits import SoftCreditInput, SoftCreditSpec
from services.crm.store import donations as gift_store
from services.crm.store import soft_credits as store
from services.crm.store.donations import Donation
from services.crm.store.soft_credits import SoftCredit

PATH = "donation.soft_credits"


async def lock_gift(uow: UnitOfWork, org: uuid.UUID, gid: uuid.UUID, also: list[uuid.UUID] | None = None,
                    ) -> tuple[Donation, dict[uuid.UUID, bool], list[uuid.UUID]]:
    """Lock the gift's donor, its soft-credited donors and `also`, then the gift. Returns the gift,
    donor id -> live for the locked donors, and the soft-credited donors."""
    for _ in range(5):
        donor, soft = await store.gift_parties(uow.conn, org, gid)
        if donor is None:
            raise NotFound(f"donation {gid} not found")
        donors = await gift_store.lock_donors(uow.conn, org, [donor, *soft, *(also or [])])
        row = await gift_store.get_for_update(uow.conn, org, gid)
        if row is not None and row.donor_id == donor:
            _, now_soft = await store.gift_parties(uow.conn, org, gid)
            if set(now_soft) <= set(soft):
                return row, donors, now_soft
        # The gift moved, or gained a credit, between the read and the lock: take those locks too.
    raise Aborted(f"donation {gid} is being changed concurrently; try again", reason="CONCURRENT_CHANGE")


def check_new(credits: list[SoftCreditInput], gift_donor: uuid.UUID | None, amount: Decimal | None, currency: str,
              v: Violations, path: str = PATH) -> list[SoftCreditSpec]:
    specs = rules.check_credits(credits, path, v)
    if amount is not None:
        rules.check_against_gift(credits, gift_donor, amount, currency, path, v)
    return specs


def _event(kind: str, c: SoftCredit | SoftCreditSpec, credit_id: uuid.UUID | None, gift: Donation,
           amount: Decimal) -> tuple[str, crm_events_pb2.SoftCreditEvent]:
    return f"crm.soft_credit.{kind}", crm_events_pb2.SoftCreditEvent(
        soft_credit_id=str(credit_id or ""), donation_id=str(gift.id), donor_id=str(c.donor_id),
        gift_donor_id=str(gift.donor_id), role=c.role, amount=money(amount, gift.currency))


def _publish(uow: UnitOfWork, event: tuple[str, crm_events_pb2.SoftCreditEvent]) -> None:
    uow.publish(event[0], event[1], aggregate_type="donor", aggregate_id=event[1].donor_id)


async def lock_for_record(uow: UnitOfWork, org: uuid.UUID, donor_id: uuid.UUID, specs: list[SoftCreditSpec]) -> None:
    """Before a gift with credits is recorded: hold its donor and the credited donors FOR SHARE
    (in id order); a credited donor that is not live is INVALID_ARGUMENT on its path."""
    live = await store.share_live_donors(uow.conn, org, [donor_id, *(s.donor_id for s in specs)])
    v = Violations()
    for i, s in enumerate(specs):
        if s.donor_id not in live:
            v.add(f"{PATH}[{i}].donor_id", "no such donor")
    v.raise_if_any()


async def add_on_record(uow: UnitOfWork, org: uuid.UUID, gift: Donation, specs: list[SoftCreditSpec]) -> None:
    """A just-recorded gift's credits, folded into the credited donors' soft totals."""
    gift.soft_credits = await store.add_to_new_gift(uow.conn, org, gift.id, gift.currency, gift.date, specs)
    for c in gift.soft_credits:
        _publish(uow, _event("added", c, c.id, gift, c.amount))


async def set_soft_credits(db: Database, org: uuid.UUID, donation_id: str, etag: str,
                           credits: list[SoftCreditInput]) -> Donation:
    v = Violations()
    gid = parse_id(donation_id, "donation_id", v)
    specs = rules.check_credits(credits, "soft_credits", v)
    v.raise_if_any()
    assert gid is not None
    async with db.unit_of_work(org) as uow:
        row, donors, _ = await lock_gift(uow, org, gid, [s.donor_id for s in specs])
        check_etag(etag, row.version, "donation", "etag")
        rules.check_against_gift(credits, row.donor_id, row.amount, row.currency, "soft_credits", v)
        for i, s in enumerate(specs):
            if not donors.get(s.donor_id):
                v.add(f"soft_credits[{i}].donor_id", "no such donor")
        v.raise_if_any()
        before = {c.donor_id: c for c in (await store.for_gifts(uow.conn, org, [gid])).get(gid, [])}
        wanted = {s.donor_id: s for s in specs}
        gone = [c for d, c in before.items() if d not in wanted]
        changed = [s for d, s in wanted.items()
                   if d in before and (before[d].role, before[d].amount) != (s.role, s.amount)]
        added = [s for d, s in wanted.items() if d not in before]
        if not (gone or changed or added):
            row.soft_credits = list(before.values())
            return row  # nothing changes: nothing written
        await store.remove(uow.conn, org, [c.id for c in gone])
        await store.upsert(uow.conn, org, gid, changed + added)
        await store.recompute(uow.conn, org, [(d, row.currency) for d in {*before, *wanted}])
        updated = await gift_store.touch(uow.conn, org, gid)
        updated.soft_credits = (await store.for_gifts(uow.conn, org, [gid])).get(gid, [])
        ids = {c.donor_id: c.id for c in updated.soft_credits}
        for c in gone:
            _publish(uow, _event("removed", c, c.id, updated, c.amount))
        for kind, group in (("changed", changed), ("added", added)):
            for s in group:
                _publish(uow, _event(kind, s, ids.get(s.donor_id), updated, s.amount))
        uow.audit("crm.donation.soft_credits", "donation", str(gid),
                  before={"soft_credits": [_audited(c) for c in before.values()]},
                  after={"soft_credits": [_audited(c) for c in updated.soft_credits]})
        return updated


def _audited(c: SoftCredit) -> dict:
    return {"donor_id": str(c.donor_id), "role": c.role, "amount": c.amount}


async def after_refund(uow: UnitOfWork, org: uuid.UUID, gift: Donation, soft: list[uuid.UUID]) -> None:
    """A refund lowers what remains of the gift: its credited donors' soft totals follow."""
    await store.recompute(uow.conn, org, [(d, gift.currency) for d in soft])


async def before_correction(uow: UnitOfWork, org: uuid.UUID, gift_id: uuid.UUID, amount: Decimal) -> None:
    """A corrected amount keeps every credit within the gift (FAILED_PRECONDITION otherwise)."""
    rules.check_correction(amount, await store.largest(uow.conn, org, gift_id), str(gift_id))


async def after_correction(uow: UnitOfWork, org: uuid.UUID, before: Donation, after: Donation,
                           soft: list[uuid.UUID]) -> None:
    """The gift's amount, date, currency or donor changed: a credit of its new donor goes, and
    every credited donor's soft totals in the old and the new currency are summed again."""
    if not soft:
        return
    if after.donor_id != before.donor_id:
        await store.drop_own_donor(uow.conn, org, after.id)
    await store.recompute(uow.conn, org, [(d, c) for d in soft for c in {before.currency, after.currency}])


async def after_merge(uow: UnitOfWork, org: uuid.UUID, survivor: uuid.UUID, merged: uuid.UUID) -> None:
    await store.merge(uow.conn, org, survivor, merged)


async def attach(uow: UnitOfWork, org: uuid.UUID, gifts: list[Donation]) -> None:
    """Read the gifts' soft credits onto them (one query)."""
    found = await store.for_gifts(uow.conn, org, [g.id for g in gifts])
    for g in gifts:
        g.soft_credits = found.get(g.id, [])
