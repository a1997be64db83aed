"""Soft credits: hard, soft and combined totals per currency, kept exact through record,
SetDonationSoftCredits, correction, refund, merge and delete; events; bad input by field; tenancy;
and crm.check_rollups after a randomized sequence of writes."""

import random
import uuid

import grpc
from givance.crm.v1 import donation_pb2, fund_pb2, fund_service_pb2_grpc
from givance.crm.v1 import donation_service_pb2 as dpb
from givance.crm.v1 import donor_service_pb2 as pb
from givance.crm.v1 import fund_service_pb2 as fpb
from google.protobuf import field_mask_pb2

from services.crm.check_rollups import run as check_command
from services.crm.handlers.rollups import check_rollups
from services.crm.settings import CrmSettings
from tests.helpers import day, error_reason, fails, gift, invalid, new_donor, usd

SPOUSE = donation_pb2.SOFT_CREDIT_ROLE_SPOUSE
SOLICITOR = donation_pb2.SOFT_CREDIT_ROLE_SOLICITOR


def credit(donor_id, amount, role=SPOUSE):
    return donation_pb2.SoftCredit(donor_id=donor_id, role=role, amount=amount)


async def _donor(stubs, tenant, **kw):
    return (await stubs.donors.CreateDonor(new_donor(**kw), metadata=tenant.md)).donor


async def _gift(stubs, tenant, donor_id, amount, credits=(), **kw):
    return (await stubs.donations.RecordDonation(gift(donor_id, amount, soft_credits=list(credits), **kw),
                                                 metadata=tenant.md)).donation


async def _totals(stubs, tenant, donor_id):
    """currency -> (hard, soft, combined, hard count, soft count), amounts as text."""
    donor = (await stubs.donors.GetDonor(pb.GetDonorRequest(id=donor_id), metadata=tenant.md)).donor

    def amt(m):
        return f"{m.units}.{m.nanos // 10_000_000:02d}"
    return {t.lifetime_amount.currency_code or t.soft_amount.currency_code:
            (amt(t.lifetime_amount), amt(t.soft_amount), amt(t.combined_amount), t.donation_count,
             t.soft_credit_count) for t in donor.giving_totals}


async def _no_differences(crm_db, tenant):
    assert await check_rollups(crm_db, uuid.UUID(tenant.org_id)) == []


async def test_hard_soft_and_combined_totals_follow_every_write(stubs, tenant, crm_db, admin_db):
    giver, spouse, officer = [await _donor(stubs, tenant, first_name=n) for n in ("Gil", "Sue", "Ola")]
    g = await _gift(stubs, tenant, giver.id, usd(1000), [credit(spouse.id, usd(1000)),
                                                       credit(officer.id, usd(250), SOLICITOR)])
    assert [(c.donor_id, c.role, c.amount.units) for c in g.soft_credits] == [
        (spouse.id, SPOUSE, 1000), (officer.id, SOLICITOR, 250)]
    await _gift(stubs, tenant, spouse.id, usd(40))
    assert await _totals(stubs, tenant, giver.id) == {"USD": ("1000.00", "0.00", "1000.00", 1, 0)}
    assert await _totals(stubs, tenant, spouse.id) == {"USD": ("40.00", "1000.00", "1040.00", 1, 1)}
    assert await _totals(stubs, tenant, officer.id) == {"USD": ("0.00", "250.00", "250.00", 0, 1)}
    kinds = await admin_db.fetch("SELECT routing_key FROM crm.outbox WHERE tenant_id = $1::uuid "
                                 "AND routing_key LIKE 'crm.soft_credit.%'", tenant.org_id)
    assert [k["routing_key"] for k in kinds] == ["crm.soft_credit.added"] * 2

    # A partial refund leaves 100 of the gift: no soft credit counts more than that.
    await stubs.donations.RefundDonation(dpb.RefundDonationRequest(
        donation_id=g.id, amount=usd(900), reason="bounced", refund_date=day(2026, 11, 2)), metadata=tenant.md)
    assert (await _totals(stubs, tenant, spouse.id))["USD"][1] == "100.00"
    assert (await _totals(stubs, tenant, officer.id))["USD"][1] == "100.00"
    await _no_differences(crm_db, tenant)

    # A correction below a credit is refused; a new currency moves the soft totals with it.
    g = (await stubs.donations.GetDonation(dpb.GetDonationRequest(id=g.id), metadata=tenant.md)).donation
    err = await fails(stubs.donations.UpdateDonation(dpb.UpdateDonationRequest(
        donation=donation_pb2.Donation(id=g.id, amount=usd(950)), update_mask=field_mask_pb2.FieldMask(
            paths=["amount"]), reason="typo"), metadata=tenant.md), grpc.StatusCode.FAILED_PRECONDITION)
    assert error_reason(err) == "AMOUNT_BELOW_SOFT_CREDIT"
    g2 = await _gift(stubs, tenant, giver.id, usd(300), [credit(officer.id, usd(300), SOLICITOR)])
    await stubs.donations.UpdateDonation(dpb.UpdateDonationRequest(
        donation=donation_pb2.Donation(id=g2.id, amount=usd(300, currency="EUR")),
        update_mask=field_mask_pb2.FieldMask(paths=["amount"]), reason="was euros"), metadata=tenant.md)
    assert (await _totals(stubs, tenant, officer.id)) == {
        "EUR": ("0.00", "300.00", "300.00", 0, 1), "USD": ("0.00", "100.00", "100.00", 0, 1)}

    # Moving the gift to the donor it soft-credited drops that credit (no double credit).
    await stubs.donations.UpdateDonation(dpb.UpdateDonationRequest(
        donation=donation_pb2.Donation(id=g2.id, donor_id=officer.id),
        update_mask=field_mask_pb2.FieldMask(paths=["donor_id"]), reason="the officer gave it"), metadata=tenant.md)
    moved = (await stubs.donations.GetDonation(dpb.GetDonationRequest(id=g2.id), metadata=tenant.md)).donation
    assert list(moved.soft_credits) == []
    assert (await _totals(stubs, tenant, officer.id))["EUR"] == ("300.00", "0.00", "300.00", 1, 0)
    await _no_differences(crm_db, tenant)


async def test_set_soft_credits_replaces_and_publishes(stubs, tenant, crm_db, admin_db):
    giver, a, b = [await _donor(stubs, tenant, first_name=n) for n in ("Gil", "Ann", "Bea")]
    g = await _gift(stubs, tenant, giver.id, usd(500), [credit(a.id, usd(500))])
    stale = g.etag
    r = await stubs.donations.SetDonationSoftCredits(dpb.SetDonationSoftCreditsRequest(
        donation_id=g.id, etag=g.etag, soft_credits=[credit(a.id, usd(200)), credit(b.id, usd(50), SOLICITOR)]),
        metadata=tenant.md)
    assert [(c.donor_id, c.amount.units) for c in r.donation.soft_credits] == [(a.id, 200), (b.id, 50)]
    assert r.donation.etag != stale
    assert (await _totals(stubs, tenant, a.id))["USD"][1] == "200.00"
    await fails(stubs.donations.SetDonationSoftCredits(dpb.SetDonationSoftCreditsRequest(
        donation_id=g.id, etag=stale, soft_credits=[]), metadata=tenant.md), grpc.StatusCode.ABORTED)
    await stubs.donations.SetDonationSoftCredits(dpb.SetDonationSoftCreditsRequest(
        donation_id=g.id, soft_credits=[credit(b.id, usd(50), SOLICITOR)]), metadata=tenant.md)
    assert await _totals(stubs, tenant, a.id) == {}
    kinds = [r["routing_key"] for r in await admin_db.fetch(
        "SELECT routing_key FROM crm.outbox WHERE tenant_id = $1::uuid AND routing_key LIKE 'crm.soft_credit.%' "
        "ORDER BY id", tenant.org_id)]
    assert kinds == ["crm.soft_credit.added", "crm.soft_credit.changed", "crm.soft_credit.added",
                     "crm.soft_credit.removed"]
    await _no_differences(crm_db, tenant)


async def test_merge_moves_soft_credits_and_drops_credit_on_own_gift(stubs, tenant, crm_db):
    giver, dup, third = [await _donor(stubs, tenant, first_name=n) for n in ("Gil", "Gill", "Tia")]
    await _gift(stubs, tenant, dup.id, usd(100), [credit(giver.id, usd(100))])  # giver credited on dup's gift
    await _gift(stubs, tenant, third.id, usd(80), [credit(dup.id, usd(30)), credit(giver.id, usd(60))])
    giver = (await stubs.donors.GetDonor(pb.GetDonorRequest(id=giver.id), metadata=tenant.md)).donor
    dup = (await stubs.donors.GetDonor(pb.GetDonorRequest(id=dup.id), metadata=tenant.md)).donor
    await stubs.donors.MergeDonors(pb.MergeDonorsRequest(survivor_id=giver.id, merged_id=dup.id,
                                                         survivor_etag=giver.etag, merged_etag=dup.etag),
                                   metadata=tenant.md)
    # dup's gift is the survivor's now (hard 100, its soft credit on it gone); on third's gift the
    # larger of the two credits stays.
    assert await _totals(stubs, tenant, giver.id) == {"USD": ("100.00", "60.00", "160.00", 1, 1)}
    await _no_differences(crm_db, tenant)


async def test_bad_soft_credits_are_named_by_field_and_write_nothing(stubs, tenant, other_tenant, admin_db):
    giver, a = [await _donor(stubs, tenant, first_name=n) for n in ("Gil", "Ann")]
    stranger = await _donor(stubs, other_tenant)
    before = await admin_db.fetchval("SELECT count(*) FROM crm.donations WHERE organization_id = $1::uuid",
                                     tenant.org_id)
    cases = [
        ([credit("nope", usd(1))], "donation.soft_credits[0].donor_id"),
        ([credit(a.id, usd(1), donation_pb2.SOFT_CREDIT_ROLE_UNSPECIFIED)], "donation.soft_credits[0].role"),
        ([credit(a.id, usd(0))], "donation.soft_credits[0].amount"),
        ([credit(a.id, usd(101))], "donation.soft_credits[0].amount"),
        ([credit(a.id, usd(5, currency="EUR"))], "donation.soft_credits[0].amount.currency_code"),
        ([credit(giver.id, usd(5))], "donation.soft_credits[0].donor_id"),
        ([credit(a.id, usd(5)), credit(a.id, usd(6))], "donation.soft_credits[1].donor_id"),
        ([credit(stranger.id, usd(5))], "donation.soft_credits[0].donor_id"),  # another tenant's donor
        ([donation_pb2.SoftCredit(donor_id=a.id, role=SPOUSE)], "donation.soft_credits[0].amount"),
        ([credit(a.id, usd(1))] * 21, "donation.soft_credits"),
    ]
    for credits, field in cases:
        await invalid(stubs.donations.RecordDonation(gift(giver.id, usd(100), soft_credits=credits),
                                                     metadata=tenant.md), field)
    assert await admin_db.fetchval("SELECT count(*) FROM crm.donations WHERE organization_id = $1::uuid",
                                   tenant.org_id) == before
    assert await admin_db.fetchval("SELECT count(*) FROM crm.soft_credits WHERE organization_id = $1::uuid",
                                   tenant.org_id) == 0
    g = await _gift(stubs, tenant, giver.id, usd(100))
    await invalid(stubs.donations.SetDonationSoftCredits(dpb.SetDonationSoftCreditsRequest(
        donation_id=g.id, soft_credits=[credit(stranger.id, usd(5))]), metadata=tenant.md),
        "soft_credits[0].donor_id")
    await invalid(stubs.donations.SetDonationSoftCredits(dpb.SetDonationSoftCreditsRequest(
        donation_id="x", soft_credits=[]), metadata=tenant.md), "donation_id")


async def test_another_tenants_gift_is_not_found(stubs, tenant, other_tenant):
    giver, a = [await _donor(stubs, tenant, first_name=n) for n in ("Gil", "Ann")]
    g = await _gift(stubs, tenant, giver.id, usd(100), [credit(a.id, usd(10))])
    await fails(stubs.donations.SetDonationSoftCredits(dpb.SetDonationSoftCreditsRequest(
        donation_id=g.id, soft_credits=[]), metadata=other_tenant.md), grpc.StatusCode.NOT_FOUND)
    listed = await stubs.donations.ListDonations(dpb.ListDonationsRequest(), metadata=other_tenant.md)
    assert list(listed.donations) == []


async def test_rollups_stay_exact_through_a_random_sequence_of_writes(stubs, tenant, crm_db, admin_db):
    """Hundreds of records (with and without credits and fund splits, two currencies), credit and
    split changes, corrections (amount, currency, date, donor), refunds, merges and donor deletes: the check
    finds no difference, and it does find one that is planted."""
    rng = random.Random(16)
    md = tenant.md
    donors = [(await _donor(stubs, tenant, first_name=f"D{i}")).id for i in range(12)]
    fund_stub = fund_service_pb2_grpc.FundServiceStub(stubs.crm_channel)
    funds = [(await fund_stub.CreateFund(fpb.CreateFundRequest(fund=fund_pb2.Fund(name=f"F{i}")), metadata=md)).fund.id
             for i in range(3)]
    gifts: list[str] = []
    ok = {"record": 0, "set": 0, "correct": 0, "refund": 0, "merge": 0, "delete": 0}

    def money(lo=1, hi=500):
        return usd(rng.randint(lo, hi), rng.choice([0, 500_000_000, 10_000_000]), rng.choice(["USD", "USD", "EUR"]))

    def split_of(amount):
        """Half the gifts split over the three funds: the parts add up to the amount exactly."""
        if rng.random() < 0.5:
            return []
        cents = amount.units * 100 + amount.nanos // 10_000_000
        a = rng.randint(1, cents - 2)
        b = rng.randint(1, cents - a - 1)
        return [donation_pb2.FundAllocation(fund_id=f, amount=usd(c // 100, (c % 100) * 10_000_000,
                                                                  amount.currency_code))
                for f, c in zip(funds, (a, b, cents - a - b), strict=True)]

    def credits_for(giver, amount):
        others = [d for d in donors if d != giver]
        picked = rng.sample(others, min(len(others), rng.choice([0, 1, 2, 2, 3])))
        return [credit(d, usd(rng.randint(1, max(1, amount.units)), 0, amount.currency_code),
                       rng.choice([SPOUSE, SOLICITOR])) for d in picked]

    for step in range(400):
        op = rng.choices(["record", "set", "correct", "refund", "merge", "delete"], [40, 12, 18, 18, 4, 3])[0]
        try:
            if op == "record" or not gifts:
                giver = rng.choice(donors)
                amount = money(2)
                r = await stubs.donations.RecordDonation(gift(giver, amount, soft_credits=credits_for(giver, amount),
                                                              allocations=split_of(amount),
                                                              date=day(2026, rng.randint(1, 10), rng.randint(1, 28))),
                                                         metadata=md)
                gifts.append(r.donation.id)
                op = "record"
            elif op == "set":
                g = (await stubs.donations.GetDonation(dpb.GetDonationRequest(id=rng.choice(gifts)),
                                                       metadata=md)).donation
                await stubs.donations.SetDonationSoftCredits(dpb.SetDonationSoftCreditsRequest(
                    donation_id=g.id, soft_credits=credits_for(g.donor_id, g.amount)), metadata=md)
                await stubs.donations.SetDonationAllocations(dpb.SetDonationAllocationsRequest(
                    donation_id=g.id, allocations=split_of(g.amount)), metadata=md)
            elif op == "correct":
                g = (await stubs.donations.GetDonation(dpb.GetDonationRequest(id=rng.choice(gifts)),
                                                       metadata=md)).donation
                path = rng.choice(["amount", "date", "donor_id", "amount"])
                patch = donation_pb2.Donation(id=g.id, etag=g.etag)
                if path == "amount":
                    patch.amount.CopyFrom(money(1, 900))
                elif path == "date":
                    patch.date.CopyFrom(day(2026, rng.randint(1, 10), rng.randint(1, 28)))
                else:
                    patch.donor_id = rng.choice(donors)
                await stubs.donations.UpdateDonation(dpb.UpdateDonationRequest(
                    donation=patch, update_mask=field_mask_pb2.FieldMask(paths=[path]), reason="fix"), metadata=md)
            elif op == "refund":
                g = (await stubs.donations.GetDonation(dpb.GetDonationRequest(id=rng.choice(gifts)),
                                                       metadata=md)).donation
                part = rng.random() < 0.6
                await stubs.donations.RefundDonation(dpb.RefundDonationRequest(
                    donation_id=g.id, reason="refund", refund_date=day(2026, 11, 30),
                    amount=usd(rng.randint(1, max(1, g.amount.units // 2)), 0, g.amount.currency_code)
                    if part else None), metadata=md)
            elif op == "merge" and len(donors) > 4:
                s_id, m_id = rng.sample(donors, 2)
                s = (await stubs.donors.GetDonor(pb.GetDonorRequest(id=s_id), metadata=md)).donor
                m = (await stubs.donors.GetDonor(pb.GetDonorRequest(id=m_id), metadata=md)).donor
                await stubs.donors.MergeDonors(pb.MergeDonorsRequest(
                    survivor_id=s.id, merged_id=m.id, survivor_etag=s.etag, merged_etag=m.etag), metadata=md)
                donors.remove(m_id)
                donors.append((await _donor(stubs, tenant, first_name=f"N{step}")).id)
            elif op == "delete" and len(donors) > 4:
                d_id = rng.choice(donors)
                d = (await stubs.donors.GetDonor(pb.GetDonorRequest(id=d_id), metadata=md)).donor
                await stubs.donors.DeleteDonor(pb.DeleteDonorRequest(id=d.id, etag=d.etag), metadata=md)
                donors.remove(d_id)
                donors.append((await _donor(stubs, tenant, first_name=f"N{step}")).id)
            else:
                continue
            ok[op] += 1
        except grpc.aio.AioRpcError as err:  # a rule refused it (over-refund, below a credit): nothing written
            assert err.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT), (
                op, err.code(), err.details())
        if step % 100 == 99:
            await _no_differences(crm_db, tenant)
    assert all(n > 0 for n in ok.values()), ok
    await _no_differences(crm_db, tenant)

    assert await check_command(CrmSettings(), [tenant.org_id]) == 0  # the operator's command agrees

    # The check does see a difference when one is there.
    org = uuid.UUID(tenant.org_id)
    planted = await admin_db.execute(
        "UPDATE crm.donor_soft_giving SET soft_amount = soft_amount + 0.01 WHERE (donor_id, currency) = "
        "(SELECT donor_id, currency FROM crm.donor_soft_giving WHERE organization_id = $1::uuid LIMIT 1)",
        tenant.org_id)
    assert planted == "UPDATE 1"
    found = await check_rollups(crm_db, org)
    assert [d.rollup for d in found] == ["soft"]
    assert await check_command(CrmSettings(), [tenant.org_id]) == 1
