"""chassis.resource: the per-resource conventions (ids, etags, masks, request ids, keyset pages)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from chassis import resource
from chassis.errors import Aborted, InvalidArgument, Violations


def test_parse_id_raises_or_collects():
    good = uuid.uuid4()
    assert resource.parse_id(str(good), "donor.id") == good
    with pytest.raises(InvalidArgument) as e:
        resource.parse_id("nope", "donor.id")
    assert e.value.violations == [("donor.id", "is not a valid id")]
    with pytest.raises(InvalidArgument) as e:
        resource.parse_id("", "donor.id")
    assert e.value.violations == [("donor.id", "is required")]
    v = Violations()
    assert resource.parse_id("nope", "a", v) is None
    assert resource.parse_id("", "b", v) is None
    assert v.items == [("a", "is not a valid id"), ("b", "is required")]
    assert resource.parse_optional_id("", "c") is None


def test_etag_and_stale_check():
    assert resource.etag(3) == 'W/"3"'
    resource.check_etag("", 3, "donor", "donor.etag")  # no etag: last writer wins
    resource.check_etag('W/"3"', 3, "donor", "donor.etag")
    with pytest.raises(Aborted) as e:
        resource.check_etag('W/"2"', 3, "donor", "donor.etag")
    assert e.value.reason == "ETAG_MISMATCH"
    assert "donor.etag is stale" in e.value.message


def test_request_id_bound():
    assert resource.check_request_id("x" * 100) == "x" * 100
    with pytest.raises(InvalidArgument):
        resource.check_request_id("x" * 101)
    v = Violations()
    resource.check_request_id("x" * 101, v)
    assert v.items[0][0] == "request_id"


def test_expand_mask_paths_groups_defaults_and_unknowns():
    table = {"name": "name", "address.city": "city", "address.zip": "zip", "amount": ("amount", "currency")}
    v = Violations()
    assert resource.expand_mask([], table, "update_mask", v) == ["name", "city", "zip", "amount", "currency"]
    assert resource.expand_mask(["address", "name", "name"], table, "update_mask", v) == ["city", "zip", "name"]
    assert resource.expand_mask(["amount"], table, "update_mask", v) == ["amount", "currency"]
    assert not v
    assert resource.expand_mask([], ["a", "b"], "m", v, default=["a"]) == ["a"]
    assert resource.expand_mask(["etag", "a"], ["a", "b"], "m", v) == ["a"]
    assert v.items and v.items[0][0] == "m" and "'etag'" in v.items[0][1]


def test_keyset_pages_round_trip_and_bind_filters():
    rows = [{"at": datetime(2026, 1, i + 1, tzinfo=UTC), "id": uuid.uuid4(), "score": Decimal(i)} for i in range(5)]
    parsers = (datetime.fromisoformat, uuid.UUID, Decimal)
    page = resource.Keyset.of(2, "", ("things", "open"), parsers)
    assert page.after is None and page.limit == 3
    first, token = page.cut(rows[:3], lambda r: (r["at"], r["id"], r["score"]))
    assert first == rows[:2] and token
    nxt = resource.Keyset.of(2, token, ("things", "open"), parsers)
    assert nxt.after == [rows[1]["at"], rows[1]["id"], Decimal(1)]
    last, end = nxt.cut(rows[2:4], lambda r: (r["at"], r["id"], r["score"]))
    assert last == rows[2:4] and end == ""
    with pytest.raises(InvalidArgument) as e:
        resource.Keyset.of(2, token, ("things", "closed"), parsers)
    assert e.value.violations[0][0] == "page_token"
    with pytest.raises(InvalidArgument):
        resource.Keyset.of(2, "garbage!", ("things", "open"), parsers)
    with pytest.raises(InvalidArgument) as e:
        resource.Keyset.of(-1, "", ("things",), parsers)
    assert e.value.violations[0][0] == "page_size"
    assert resource.Keyset.of(0, "", (), parsers).size == 50
    assert resource.Keyset.of(10**6, "", (), parsers).size == 1000


def test_a_forged_token_with_a_bad_decimal_is_invalid_not_internal():
    from chassis import paging

    fp = paging.fingerprint("insight")
    forged = paging.encode(["not-a-number", str(uuid.uuid4())], fp)
    with pytest.raises(InvalidArgument):
        resource.Keyset.of(10, forged, ("insight",), (Decimal, uuid.UUID))
