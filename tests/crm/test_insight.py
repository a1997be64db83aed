"""Giving insight: donor giving, LYBUNT/SYBUNT, RFM and the giving summary, with hand-computed
figures over gifts recorded through the API; bad input on every RPC; tenancy."""

import uuid
from datetime import date

import grpc
import pytest
from givance.crm.v1 import donor_service_pb2 as dpb
from givance.crm.v1 import insight_pb2
from givance.crm.v1 import insight_service_pb2 as pb

from tests.helpers import day, fails, gift, invalid, new_donor, usd


@pytest.fixture
def insight(stubs):
    return stubs.insight


def _m(money):
    return (money.currency_code, money.units, money.nanos)


def _d(d):
    return (d.year, d.month, d.day)


async def _giver(stubs, tenant, gifts):
    donor = (await stubs.donors.CreateDonor(new_donor(), metadata=tenant.md)).donor
    for amount, when in gifts:
        await stubs.donations.RecordDonation(gift(donor.id, amount, date=day(*when)), metadata=tenant.md)
    return donor.id


@pytest.fixture
async def book(stubs, tenant):
    """A: 2023, 2024 x2 (+ EUR 2025); B: 2024, 2025; C: 2022-06-30; D: four gifts in 2025; F: 2025-06-30;
    E: 2024, then deleted."""
    ids = {
        "A": await _giver(stubs, tenant, [(usd(100), (2023, 3, 1)), (usd(250, 500_000_000), (2024, 6, 15)),
                                          (usd(49, 500_000_000), (2024, 12, 1)),
                                          (usd(40, currency="EUR"), (2025, 2, 2))]),
        "B": await _giver(stubs, tenant, [(usd(500), (2024, 2, 10)), (usd(75), (2025, 5, 5))]),
        "C": await _giver(stubs, tenant, [(usd(300), (2022, 6, 30))]),
        "D": await _giver(stubs, tenant, [(usd(10, 10_000_000), (2025, 1, 20)), (usd(10), (2025, 1, 25)),
                                          (usd(10), (2025, 3, 3)), (usd(10), (2025, 4, 1))]),
        "F": await _giver(stubs, tenant, [(usd(5), (2025, 6, 30))]),
        "E": await _giver(stubs, tenant, [(usd(1000), (2024, 8, 1))]),
    }
    await stubs.donors.DeleteDonor(dpb.DeleteDonorRequest(id=ids["E"]), metadata=tenant.md)
    return ids


async def test_donor_giving_is_exact_per_currency(insight, tenant, book):
    g = (await insight.GetDonorGiving(pb.GetDonorGivingRequest(donor_id=book["A"]), metadata=tenant.md)).giving
    assert g.donor_id == book["A"] and g.currency_code == "USD"
    assert _m(g.lifetime_total) == ("USD", 400, 0) and g.gift_count == 3
    assert _m(g.largest_gift.amount) == ("USD", 250, 500_000_000) and _d(g.largest_gift.date) == (2024, 6, 15)
    assert _m(g.first_gift.amount) == ("USD", 100, 0) and _d(g.first_gift.date) == (2023, 3, 1)
    assert _m(g.last_gift.amount) == ("USD", 49, 500_000_000) and _d(g.last_gift.date) == (2024, 12, 1)
    assert [(y.year, _m(y.total), y.gift_count) for y in g.years] == [
        (2023, ("USD", 100, 0), 1), (2024, ("USD", 300, 0), 2)]
    eur = (await insight.GetDonorGiving(pb.GetDonorGivingRequest(donor_id=book["A"], currency_code="EUR"),
                                        metadata=tenant.md)).giving
    assert _m(eur.lifetime_total) == ("EUR", 40, 0) and eur.gift_count == 1
    assert [(y.year, y.gift_count) for y in eur.years] == [(2025, 1)]
    none = (await insight.GetDonorGiving(pb.GetDonorGivingRequest(donor_id=book["A"], currency_code="GBP"),
                                         metadata=tenant.md)).giving
    assert none.gift_count == 0 and _m(none.lifetime_total) == ("GBP", 0, 0)
    assert not none.HasField("largest_gift") and not none.HasField("first_gift") and not none.years


async def test_lybunt_and_sybunt_membership_and_paging(insight, tenant, book):
    ly = (await insight.ListLybuntDonors(pb.ListLybuntDonorsRequest(year=2025), metadata=tenant.md))
    assert [(d.donor_id, _m(d.last_year_total), _d(d.last_gift_date)) for d in ly.donors] == [
        (book["A"], ("USD", 300, 0), (2024, 12, 1))]  # B gave again in 2025; E is deleted
    assert ly.next_page_token == ""
    sy = [(d.donor_id, _m(d.lifetime_total), _d(d.last_gift_date)) for d in
          (await insight.ListSybuntDonors(pb.ListSybuntDonorsRequest(year=2025), metadata=tenant.md)).donors]
    assert sy == [(book["A"], ("USD", 400, 0), (2024, 12, 1)), (book["C"], ("USD", 300, 0), (2022, 6, 30))]
    # 2024: A gave in 2023 and again in 2024 (not LYBUNT); C skipped 2023 and 2024 (SYBUNT only)
    assert not (await insight.ListLybuntDonors(pb.ListLybuntDonorsRequest(year=2024), metadata=tenant.md)).donors
    sy24 = (await insight.ListSybuntDonors(pb.ListSybuntDonorsRequest(year=2024), metadata=tenant.md)).donors
    assert [d.donor_id for d in sy24] == [book["C"]]
    # EUR: A gave in 2025 only
    assert not (await insight.ListSybuntDonors(pb.ListSybuntDonorsRequest(year=2025, currency_code="EUR"),
                                               metadata=tenant.md)).donors
    seen, token = [], ""
    for _ in range(3):
        page = await insight.ListSybuntDonors(pb.ListSybuntDonorsRequest(year=2025, page_size=1, page_token=token),
                                              metadata=tenant.md)
        seen += [d.donor_id for d in page.donors]
        token = page.next_page_token
        if not token:
            break
    assert seen == [book["A"], book["C"]] and token == ""


async def test_rfm_scores_and_order(insight, tenant, book):
    as_of = date(2025, 6, 30)
    resp = await insight.ListDonorRfm(pb.ListDonorRfmRequest(as_of=day(2025, 6, 30)), metadata=tenant.md)
    got = {d.donor_id: d for d in resp.donors}
    assert [d.donor_id for d in resp.donors] == [book[k] for k in ("F", "B", "D", "A", "C")]
    expect = {  # recency days, frequency, monetary, score
        "F": (0, 1, ("USD", 5, 0), "522"),
        "B": ((as_of - date(2025, 5, 5)).days, 2, ("USD", 575, 0), "435"),
        "D": ((as_of - date(2025, 4, 1)).days, 4, ("USD", 40, 10_000_000), "353"),
        "A": ((as_of - date(2024, 12, 1)).days, 3, ("USD", 400, 0), "244"),
        # 2022-06-30 is exactly three years back: outside the window (frequency 0), but still recency
        "C": (1096, 0, ("USD", 0, 0), "111"),
    }
    for k, (rec, freq, mon, score) in expect.items():
        d = got[book[k]]
        assert (d.recency_days, d.frequency, _m(d.monetary), d.score) == (rec, freq, mon, score), k
        assert f"{d.recency_score}{d.frequency_score}{d.monetary_score}" == score
    assert expect["B"][0] == 56 and expect["A"][0] == 211
    seen, token = [], ""
    for _ in range(5):
        page = await insight.ListDonorRfm(pb.ListDonorRfmRequest(as_of=day(2025, 6, 30), page_size=2,
                                                                 page_token=token), metadata=tenant.md)
        seen += [d.donor_id for d in page.donors]
        token = page.next_page_token
        if not token:
            break
    assert seen == [d.donor_id for d in resp.donors] and token == ""
    # before any gift: nobody
    assert not (await insight.ListDonorRfm(pb.ListDonorRfmRequest(as_of=day(2020, 1, 1)), metadata=tenant.md)).donors


async def test_giving_summary_by_year_with_retention(insight, tenant, book):
    resp = await insight.GetGivingSummary(pb.GetGivingSummaryRequest(
        period=insight_pb2.SUMMARY_PERIOD_YEAR, start_date=day(2023, 5, 5), end_date=day(2025, 1, 1)),
        metadata=tenant.md)
    rows = [(_d(p.start_date), _d(p.end_date), _m(p.total), p.gift_count, p.donor_count, _m(p.average_gift),
             p.previous_donor_count, p.retained_donor_count, p.retention_rate if p.HasField("retention_rate") else None)
            for p in resp.periods]
    assert rows == [
        # 2022 had C only, who did not give in 2023
        ((2023, 1, 1), (2023, 12, 31), ("USD", 100, 0), 1, 1, ("USD", 100, 0), 1, 0, 0.0),
        # the deleted donor's gift still counts in the organization's totals
        ((2024, 1, 1), (2024, 12, 31), ("USD", 1800, 0), 4, 3, ("USD", 450, 0), 1, 1, 1.0),
        # 120.01 / 6 = 20.0016.. -> 20.00; of A, B, E only B came back: 1/3
        ((2025, 1, 1), (2025, 12, 31), ("USD", 120, 10_000_000), 6, 3, ("USD", 20, 0), 3, 1, 0.3333),
    ]
    first = (await insight.GetGivingSummary(pb.GetGivingSummaryRequest(
        period=insight_pb2.SUMMARY_PERIOD_YEAR, start_date=day(2022, 1, 1), end_date=day(2022, 12, 31)),
        metadata=tenant.md)).periods
    assert len(first) == 1 and _m(first[0].total) == ("USD", 300, 0) and not first[0].HasField("retention_rate")


async def test_giving_summary_by_quarter_and_month(insight, tenant, book):
    q = (await insight.GetGivingSummary(pb.GetGivingSummaryRequest(
        period=insight_pb2.SUMMARY_PERIOD_QUARTER, start_date=day(2024, 2, 1), end_date=day(2024, 11, 30)),
        metadata=tenant.md)).periods
    assert [(_d(p.start_date), _d(p.end_date), _m(p.total), p.donor_count) for p in q] == [
        ((2024, 1, 1), (2024, 3, 31), ("USD", 500, 0), 1),
        ((2024, 4, 1), (2024, 6, 30), ("USD", 250, 500_000_000), 1),
        ((2024, 7, 1), (2024, 9, 30), ("USD", 1000, 0), 1),
        ((2024, 10, 1), (2024, 12, 31), ("USD", 49, 500_000_000), 1)]
    assert not q[0].HasField("retention_rate")  # Q4 2023 had no donors
    assert [p.retention_rate for p in q[1:]] == [0.0, 0.0, 0.0]
    m = (await insight.GetGivingSummary(pb.GetGivingSummaryRequest(
        period=insight_pb2.SUMMARY_PERIOD_MONTH, start_date=day(2025, 1, 31), end_date=day(2025, 3, 1)),
        metadata=tenant.md)).periods
    assert [(_d(p.start_date), _d(p.end_date), p.gift_count, _m(p.total), _m(p.average_gift)) for p in m] == [
        ((2025, 1, 1), (2025, 1, 31), 2, ("USD", 20, 10_000_000), ("USD", 10, 0)),  # 20.01/2 = 10.005 -> 10.00
        ((2025, 2, 1), (2025, 2, 28), 0, ("USD", 0, 0), ("USD", 0, 0)),
        ((2025, 3, 1), (2025, 3, 31), 1, ("USD", 10, 0), ("USD", 10, 0))]
    assert m[1].retention_rate == 0.0 and m[2].HasField("retention_rate") is False


async def test_bad_input_on_every_rpc(insight, tenant, book):
    md = tenant.md
    await invalid(insight.GetDonorGiving(pb.GetDonorGivingRequest(donor_id="nope"), metadata=md), "donor_id")
    await invalid(insight.GetDonorGiving(pb.GetDonorGivingRequest(donor_id=book["A"], currency_code="usd"),
                                          metadata=md), "currency_code")
    for year in (0, 1899, 2201):
        await invalid(insight.ListLybuntDonors(pb.ListLybuntDonorsRequest(year=year), metadata=md), "year")
        await invalid(insight.ListSybuntDonors(pb.ListSybuntDonorsRequest(year=year), metadata=md), "year")
    await invalid(insight.ListLybuntDonors(pb.ListLybuntDonorsRequest(year=2025, page_size=-1), metadata=md),
                   "page_size")
    await invalid(insight.ListSybuntDonors(pb.ListSybuntDonorsRequest(year=2025, page_token="zz"), metadata=md),
                   "page_token")
    token = (await insight.ListSybuntDonors(pb.ListSybuntDonorsRequest(year=2025, page_size=1),
                                            metadata=md)).next_page_token
    await invalid(insight.ListSybuntDonors(pb.ListSybuntDonorsRequest(year=2024, page_size=1, page_token=token),
                                            metadata=md), "page_token")
    await invalid(insight.ListDonorRfm(pb.ListDonorRfmRequest(as_of=day(2025, 13, 1)), metadata=md), "as_of")
    await invalid(insight.ListDonorRfm(pb.ListDonorRfmRequest(currency_code="US"), metadata=md), "currency_code")
    await invalid(insight.ListDonorRfm(pb.ListDonorRfmRequest(page_token="x"), metadata=md), "page_token")
    ok = dict(period=insight_pb2.SUMMARY_PERIOD_MONTH, start_date=day(2025, 1, 1), end_date=day(2025, 2, 1))
    cases = [
        (dict(ok, period=insight_pb2.SUMMARY_PERIOD_UNSPECIFIED), "period"),
        (dict(ok, period=99), "period"),
        (dict(ok, start_date=day(2025, 3, 1)), "end_date"),
        (dict(ok, start_date=day(2000, 1, 1), end_date=day(2033, 5, 1)), "end_date"),  # 401 months
        (dict(ok, end_date=day(2025, 2, 30)), "end_date"),
        ({k: v for k, v in ok.items() if k != "start_date"}, "start_date"),
        (dict(ok, start_date=day(1800, 1, 1)), "start_date"),
        (dict(ok, currency_code="dollars"), "currency_code"),
    ]
    for kw, field in cases:
        await invalid(insight.GetGivingSummary(pb.GetGivingSummaryRequest(**kw), metadata=md), field)
    # exactly 400 months is allowed
    n = (await insight.GetGivingSummary(pb.GetGivingSummaryRequest(**dict(
        ok, start_date=day(2000, 1, 1), end_date=day(2033, 4, 30))), metadata=md)).periods
    assert len(n) == 400


async def test_tenant_isolation_and_deleted_donors(stubs, insight, tenant, other_tenant, book):
    for donor_id in (book["A"], book["E"], str(uuid.uuid4())):
        await fails(insight.GetDonorGiving(pb.GetDonorGivingRequest(donor_id=donor_id),
                                           metadata=other_tenant.md if donor_id == book["A"] else tenant.md),
                    grpc.StatusCode.NOT_FOUND)
    omd = other_tenant.md
    assert not (await insight.ListSybuntDonors(pb.ListSybuntDonorsRequest(year=2025), metadata=omd)).donors
    assert not (await insight.ListDonorRfm(pb.ListDonorRfmRequest(as_of=day(2025, 6, 30)), metadata=omd)).donors
    # the other tenant's own gifts: 0.01 + 0.04 -> average 0.025, half-even 0.02
    await _giver(stubs, other_tenant, [(usd(0, 10_000_000), (2024, 1, 5)), (usd(0, 40_000_000), (2024, 1, 6))])
    s = (await insight.GetGivingSummary(pb.GetGivingSummaryRequest(
        period=insight_pb2.SUMMARY_PERIOD_YEAR, start_date=day(2024, 1, 1), end_date=day(2024, 1, 1)),
        metadata=omd)).periods
    assert [(p.gift_count, _m(p.total), _m(p.average_gift)) for p in s] == [(2, ("USD", 0, 50_000_000),
                                                                              ("USD", 0, 20_000_000))]
    # and the first tenant's 2024 is unchanged by them
    mine = (await insight.GetGivingSummary(pb.GetGivingSummaryRequest(
        period=insight_pb2.SUMMARY_PERIOD_YEAR, start_date=day(2024, 1, 1), end_date=day(2024, 1, 1)),
        metadata=tenant.md)).periods
    assert _m(mine[0].total) == ("USD", 1800, 0) and mine[0].gift_count == 4
