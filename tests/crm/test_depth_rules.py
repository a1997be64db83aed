"""Pure rules of issue 16: shares to the cent, household names and salutations."""

import random
from decimal import Decimal

import pytest

from chassis.errors import FailedPrecondition
from services.crm.domain import funds, households
from services.crm.domain.households import MemberName


def test_shares_add_up_exactly_and_never_exceed_their_part():
    rng = random.Random(7)
    for _ in range(2000):
        parts = [Decimal(rng.randint(1, 100_000)) / 100 for _ in range(rng.randint(1, 6))]
        whole = sum(parts)
        refunded = Decimal(rng.randint(0, int(whole * 100))) / 100
        shares = funds.share(refunded, parts)
        assert sum(shares) == refunded
        assert all(Decimal(0) <= s <= p for s, p in zip(shares, parts, strict=True))


def test_a_rescaled_split_adds_up_or_is_refused():
    assert funds.rescale([Decimal("33.33"), Decimal("33.33"), Decimal("33.34")], Decimal("200"), "g") == [
        Decimal("66.66"), Decimal("66.66"), Decimal("66.68")]
    with pytest.raises(FailedPrecondition):
        funds.rescale([Decimal("99.98"), Decimal("0.01"), Decimal("0.01")], Decimal("1.00"), "g")


@pytest.mark.parametrize("members,name,formal,informal", [
    ([("Ngozi", "Okafor"), ("Emeka", "Okafor")], "Okafor Household", "Ngozi and Emeka Okafor", "Ngozi and Emeka"),
    ([("Tomas", "Reyes"), ("Emeka", "Okafor")], "Reyes and Okafor Household", "Tomas Reyes and Emeka Okafor",
     "Tomas and Emeka"),
    ([("Ann", "Alder"), ("Ben", "Alder"), ("Cal", "Alder")], "Alder Household", "Ann, Ben and Cal Alder",
     "Ann, Ben and Cal"),
    ([], "Household", "Friends", "Friends"),
])
def test_household_names_and_salutations(members, name, formal, informal):
    names = [MemberName(f, last) for f, last in members]
    assert households.derived_name(names) == name
    assert households.salutations(names) == (formal, informal)
