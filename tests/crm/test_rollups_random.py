"""crm.check_rollups after a seeded random sequence of thousands of writes through the gRPC API:
records (with soft credits, fund splits, pledge payments), corrections (amount, date, donor,
deductibility), refunds, soft credit and split changes, receipts marked, gift batches posted,
pledges created and written off, employer matches received, merges and deletes. Every kept
total (hard, soft, splits, pledges, live receipts) must agree with the gifts.

GIVANCE_ROLLUP_WRITES (2000) sets the length, GIVANCE_ROLLUP_SEED (16) the seed: a failure names
the seed and the step, so it reproduces."""

import os
import random
import uuid

import grpc
from givance.crm.v1 import (
    donation_pb2,
    fund_pb2,
    fund_service_pb2_grpc,
    gift_batch_pb2,
    gift_batch_service_pb2_grpc,
    matching_gift_pb2,
    matching_gift_service_pb2_grpc,
    pledge_pb2,
    pledge_service_pb2_grpc,
)
from givance.crm.v1 import donation_service_pb2 as dpb
from givance.crm.v1 import donor_service_pb2 as pb
from givance.crm.v1 import fund_service_pb2 as fpb
from givance.crm.v1 import gift_batch_service_pb2 as bpb
from givance.crm.v1 import matching_gift_service_pb2 as mpb
from givance.crm.v1 import pledge_service_pb2 as ppb
from google.protobuf import field_mask_pb2

from services.crm.handlers.rollups import check_rollups
from tests.helpers import day, gift, new_donor, usd

WRITES = int(os.environ.get("GIVANCE_ROLLUP_WRITES", "2000"))
SEED = int(os.environ.get("GIVANCE_ROLLUP_SEED", "16"))
# What a rule may refuse (over-refunds, a correction below a credit, a written-off pledge...):
# nothing is written then, and the check still has to agree.
REFUSED = (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.ALREADY_EXISTS)
OPS = {"record": 34, "correct": 12, "refund": 10, "credits": 5, "split": 5, "receipts": 6, "batch": 4,
       "pledge": 5, "write_off": 1, "match": 3, "merge": 2, "delete": 2}


class Run:
    def __init__(self, stubs, tenant, rng: random.Random):
        self.stubs, self.md, self.rng = stubs, tenant.md, rng
        cc = stubs.crm_channel
        self.funds_stub = fund_service_pb2_grpc.FundServiceStub(cc)
        self.batches = gift_batch_service_pb2_grpc.GiftBatchServiceStub(cc)
        self.pledges_stub = pledge_service_pb2_grpc.PledgeServiceStub(cc)
        self.matches = matching_gift_service_pb2_grpc.MatchingGiftServiceStub(cc)
        self.donors: list[str] = []
        self.funds: list[str] = []
        self.gifts: list[str] = []
        self.known: dict[str, donation_pb2.Donation] = {}  # each gift as the last write answered it
        self.pledges: list[str] = []
        self.writes = 0

    async def new_donor(self, name: str) -> None:
        self.donors.append((await self.stubs.donors.CreateDonor(new_donor(first_name=name), metadata=self.md)).donor.id)
        self.writes += 1

    def money(self, lo: int = 2, hi: int = 500, currency: str | None = None):
        return usd(self.rng.randint(lo, hi), self.rng.choice([0, 500_000_000, 10_000_000]),
                   currency or self.rng.choice(["USD", "USD", "USD", "EUR"]))

    def split(self, amount):
        if self.rng.random() < 0.5:
            return []
        cents = amount.units * 100 + amount.nanos // 10_000_000
        a = self.rng.randint(1, cents - 2)
        b = self.rng.randint(1, cents - a - 1)
        return [donation_pb2.FundAllocation(fund_id=f, amount=usd(c // 100, (c % 100) * 10_000_000,
                                                                  amount.currency_code))
                for f, c in zip(self.funds, (a, b, cents - a - b), strict=True)]

    def credits(self, giver: str, amount):
        others = [d for d in self.donors if d != giver]
        picked = self.rng.sample(others, min(len(others), self.rng.choice([0, 0, 1, 2])))
        role = self.rng.choice([donation_pb2.SOFT_CREDIT_ROLE_SPOUSE, donation_pb2.SOFT_CREDIT_ROLE_SOLICITOR])
        return [donation_pb2.SoftCredit(donor_id=d, role=role, amount=usd(self.rng.randint(1, max(1, amount.units)), 0,
                                                                          amount.currency_code)) for d in picked]

    def when(self):
        return day(self.rng.choice([2025, 2026]), self.rng.randint(1, 10), self.rng.randint(1, 28))

    async def gift_of(self, gift_id: str):
        """The gift as the last write of it answered (no read: the writes are what is measured)."""
        return self.known[gift_id]

    def keep(self, g) -> None:
        self.known[g.id] = g

    async def record(self) -> None:
        giver, pledge_id = self.rng.choice(self.donors), ""
        amount = self.money()
        if self.pledges and self.rng.random() < 0.25:
            p = (await self.stubs_pledge(self.rng.choice(self.pledges)))
            if p.status == pledge_pb2.PLEDGE_STATUS_OPEN and p.donor_id in self.donors:
                giver, pledge_id = p.donor_id, p.id
                amount = self.money(1, max(2, p.amount.units // 2), p.amount.currency_code)
        r = await self.stubs.donations.RecordDonation(gift(
            giver, amount, soft_credits=self.credits(giver, amount), allocations=self.split(amount),
            date=self.when(), pledge_id=pledge_id, tax_deductible=self.rng.random() < 0.9), metadata=self.md)
        self.gifts.append(r.donation.id)
        self.keep(r.donation)

    async def stubs_pledge(self, pledge_id: str):
        return (await self.pledges_stub.GetPledge(ppb.GetPledgeRequest(id=pledge_id), metadata=self.md)).pledge

    async def correct(self) -> None:
        g = await self.gift_of(self.rng.choice(self.gifts))
        path = self.rng.choice(["amount", "amount", "date", "donor_id", "tax_deductible"])
        patch = donation_pb2.Donation(id=g.id)
        if path == "amount":
            patch.amount.CopyFrom(self.money(1, 900, g.amount.currency_code if self.rng.random() < 0.8 else None))
        elif path == "date":
            patch.date.CopyFrom(self.when())
        elif path == "donor_id":
            patch.donor_id = self.rng.choice(self.donors)
        else:
            patch.tax_deductible = not g.tax_deductible
        r = await self.stubs.donations.UpdateDonation(dpb.UpdateDonationRequest(
            donation=patch, update_mask=field_mask_pb2.FieldMask(paths=[path]), reason="fix"), metadata=self.md)
        self.keep(r.donation)

    async def refund(self) -> None:
        g = await self.gift_of(self.rng.choice(self.gifts))
        part = self.rng.random() < 0.6
        r = await self.stubs.donations.RefundDonation(dpb.RefundDonationRequest(
            donation_id=g.id, reason="refund", refund_date=day(2026, 11, 30),
            amount=usd(self.rng.randint(1, max(1, g.amount.units // 2)), 0, g.amount.currency_code) if part else None),
            metadata=self.md)
        self.keep(r.donation)

    async def set_credits(self) -> None:
        g = await self.gift_of(self.rng.choice(self.gifts))
        r = await self.stubs.donations.SetDonationSoftCredits(dpb.SetDonationSoftCreditsRequest(
            donation_id=g.id, soft_credits=self.credits(g.donor_id, g.amount)), metadata=self.md)
        self.keep(r.donation)

    async def set_split(self) -> None:
        g = await self.gift_of(self.rng.choice(self.gifts))
        r = await self.stubs.donations.SetDonationAllocations(dpb.SetDonationAllocationsRequest(
            donation_id=g.id, allocations=self.split(g.amount)), metadata=self.md)
        self.keep(r.donation)

    async def receipts(self) -> None:
        ids = self.rng.sample(self.gifts, min(len(self.gifts), self.rng.randint(1, 8)))
        await self.stubs.donations.MarkReceiptsSent(dpb.MarkReceiptsSentRequest(donation_ids=ids), metadata=self.md)

    async def batch(self) -> None:
        count = self.rng.randint(2, 6)
        amounts = [usd(self.rng.randint(5, 300)) for _ in range(count)]
        batch = (await self.batches.CreateGiftBatch(bpb.CreateGiftBatchRequest(batch=gift_batch_pb2.GiftBatch(
            name="deposit", expected_count=count, expected_total=usd(sum(a.units for a in amounts)))),
            metadata=self.md)).batch
        for a in amounts:
            await self.batches.AddBatchGift(bpb.AddBatchGiftRequest(batch_id=batch.id, gift=gift_batch_pb2.BatchGift(
                donation=donation_pb2.Donation(donor_id=self.rng.choice(self.donors), amount=a, date=self.when()))),
                metadata=self.md)
            self.writes += 1
        posted = await self.batches.PostGiftBatch(bpb.PostGiftBatchRequest(id=batch.id), metadata=self.md)
        entered = await self.batches.ListBatchGifts(bpb.ListBatchGiftsRequest(batch_id=posted.batch.id),
                                                    metadata=self.md)
        for g in entered.gifts:
            self.gifts.append(g.donation_id)
            self.keep(donation_pb2.Donation(id=g.donation_id, donor_id=g.donation.donor_id, amount=g.donation.amount,
                                            tax_deductible=True))

    async def pledge(self) -> None:
        p = await self.pledges_stub.CreatePledge(ppb.CreatePledgeRequest(pledge=pledge_pb2.Pledge(
            donor_id=self.rng.choice(self.donors), amount=self.money(50, 2000), start_date=self.when(),
            frequency=pledge_pb2.PLEDGE_FREQUENCY_MONTHLY, installment_count=self.rng.randint(1, 12))),
            metadata=self.md)
        self.pledges.append(p.pledge.id)

    async def write_off(self) -> None:
        await self.pledges_stub.WriteOffPledge(ppb.WriteOffPledgeRequest(id=self.rng.choice(self.pledges),
                                                                         reason="lapsed"), metadata=self.md)

    async def match(self) -> None:
        g = await self.gift_of(self.rng.choice(self.gifts))
        employer = self.rng.choice([d for d in self.donors if d != g.donor_id])
        amount = usd(self.rng.randint(1, max(1, g.amount.units)), 0, g.amount.currency_code)
        m = await self.matches.CreateMatchingGift(mpb.CreateMatchingGiftRequest(matching_gift=
            matching_gift_pb2.MatchingGift(donation_id=g.id, employer_donor_id=employer, amount=amount)),
            metadata=self.md)
        self.writes += 1
        r = await self.matches.ReceiveMatchingGift(mpb.ReceiveMatchingGiftRequest(
            id=m.matching_gift.id, date=self.when()), metadata=self.md)
        self.gifts.append(r.donation.id)
        self.keep(r.donation)

    async def merge(self, step: int) -> None:
        s_id, m_id = self.rng.sample(self.donors, 2)
        s = (await self.stubs.donors.GetDonor(pb.GetDonorRequest(id=s_id), metadata=self.md)).donor
        m = (await self.stubs.donors.GetDonor(pb.GetDonorRequest(id=m_id), metadata=self.md)).donor
        await self.stubs.donors.MergeDonors(pb.MergeDonorsRequest(
            survivor_id=s.id, merged_id=m.id, survivor_etag=s.etag, merged_etag=m.etag), metadata=self.md)
        self.donors.remove(m_id)
        for g in self.known.values():  # the merged donor's gifts are the survivor's now
            if g.donor_id == m_id:
                g.donor_id = s_id
        await self.new_donor(f"N{step}")

    async def delete(self, step: int) -> None:
        d_id = self.rng.choice(self.donors)
        d = (await self.stubs.donors.GetDonor(pb.GetDonorRequest(id=d_id), metadata=self.md)).donor
        await self.stubs.donors.DeleteDonor(pb.DeleteDonorRequest(id=d.id, etag=d.etag), metadata=self.md)
        self.donors.remove(d_id)
        await self.new_donor(f"N{step}")


async def test_every_rollup_agrees_after_thousands_of_random_writes(stubs, tenant, crm_db):
    rng = random.Random(SEED)
    run = Run(stubs, tenant, rng)
    org = uuid.UUID(tenant.org_id)
    for i in range(16):
        await run.new_donor(f"D{i}")
    run.funds = [(await run.funds_stub.CreateFund(fpb.CreateFundRequest(fund=fund_pb2.Fund(name=f"F{i}")),
                                                  metadata=run.md)).fund.id for i in range(3)]
    done = dict.fromkeys(OPS, 0)
    step = 0
    while run.writes < WRITES:
        step += 1
        op = rng.choices(list(OPS), list(OPS.values()))[0]
        if not run.gifts or (op == "write_off" and not run.pledges):
            op = "record"
        action = {"record": run.record, "correct": run.correct, "refund": run.refund, "credits": run.set_credits,
                  "split": run.set_split, "receipts": run.receipts, "batch": run.batch, "pledge": run.pledge,
                  "write_off": run.write_off, "match": run.match}.get(op)
        try:
            if action is not None:
                await action()
            elif op == "merge":
                await run.merge(step)
            else:
                await run.delete(step)
            done[op] += 1
        except grpc.aio.AioRpcError as err:
            assert err.code() in REFUSED, (SEED, step, op, err.code(), err.details())
        run.writes += 1
        if step % 500 == 0:
            assert await check_rollups(crm_db, org) == [], (SEED, step)
    assert all(n > 0 for n in done.values()), done
    assert await check_rollups(crm_db, org) == [], (SEED, step)
